package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type fixture struct {
	signer *Signer
	keys   KeySet
	now    time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	_, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	f.signer = NewSigner(priv).WithClock(func() time.Time { return f.now })
	f.keys = KeySet{}
	f.keys.Add(f.signer.PublicKey())
	return f
}

func (f *fixture) verifier(node string) *Verifier {
	return NewVerifier(node, f.keys).WithClock(func() time.Time { return f.now })
}

func (f *fixture) mint(t testing.TB, user, node string) string {
	t.Helper()
	tok, _, err := f.signer.Mint(user, node)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want rejection %q", want)
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("reason = %q (%v), want %q", got, err, want)
	}
}

func TestMintVerify(t *testing.T) {
	f := newFixture(t)
	tok, exp, err := f.signer.Mint("alice", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(f.now.Add(DefaultTTL)) {
		t.Fatalf("exp = %v", exp)
	}
	c, err := f.verifier("node-1").Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || len(c.ID) != 32 || c.Audience != "node-1" || !c.IssuedAt.Equal(f.now) {
		t.Fatalf("claims = %+v", c)
	}
	if len(tok) > 400 {
		t.Fatalf("token is %d bytes; a URL query should stay small", len(tok))
	}
	if c.Rebalanced {
		t.Fatal("a plain token reports Rebalanced")
	}
}

// TestMintRebalanced: the mark survives the round trip, is signed (removing
// it breaks the signature), and a plain token's claims do not carry it.
func TestMintRebalanced(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.signer.MintRebalanced("alice", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.verifier("node-1").Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Rebalanced || c.Subject != "alice" {
		t.Fatalf("claims = %+v", c)
	}
	parts := strings.Split(tok, ".")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(claims), `,"rb":true}`) {
		t.Fatalf("claims %s: want the mark last, as the format says", claims)
	}
	stripped := strings.Replace(string(claims), `,"rb":true}`, `}`, 1)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(stripped)) + "." + parts[2]
	_, err = f.verifier("node-1").Verify(forged)
	wantReason(t, err, ReasonBadSignature)
	plain := f.mint(t, "alice", "node-1")
	if pc, _ := base64.RawURLEncoding.DecodeString(strings.Split(plain, ".")[1]); strings.Contains(string(pc), `"rb"`) {
		t.Fatalf("plain claims %s carry rb", pc)
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // a key outside the trusted set

	t.Run("bad signature", func(t *testing.T) {
		tok := f.mint(t, "u", "n1")
		parts := strings.Split(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 0xff
		parts[2] = base64.RawURLEncoding.EncodeToString(sig)
		_, err := f.verifier("n1").Verify(strings.Join(parts, "."))
		wantReason(t, err, ReasonBadSignature)
	})
	t.Run("tampered claims", func(t *testing.T) {
		tok := f.mint(t, "u", "n1")
		parts := strings.Split(tok, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","aud":"n1","exp":9999999999,"nbf":1,"iat":1,"jti":"0123456789abcdef0123456789abcdef"}`))
		_, err := f.verifier("n1").Verify(strings.Join(parts, "."))
		wantReason(t, err, ReasonBadSignature)
	})
	t.Run("untrusted key, own kid", func(t *testing.T) {
		other.now = f.now
		_, err := f.verifier("n1").Verify(other.mint(t, "u", "n1"))
		wantReason(t, err, ReasonUnknownKey)
	})
	t.Run("untrusted key, forged trusted kid", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"}, ID: "abc",
			ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(f.now)}
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tk.Header["kid"] = f.signer.KeyID()
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		raw, _ := tk.SignedString(priv)
		_, err := f.verifier("n1").Verify(raw)
		wantReason(t, err, ReasonBadSignature)
	})
	t.Run("no kid", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"}, ID: "abc",
			ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(f.now)}
		raw, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(f.signer.key)
		_, err := f.verifier("n1").Verify(raw)
		wantReason(t, err, ReasonUnknownKey)
	})
	t.Run("alg none", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"}, ID: "abc",
			ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Minute))}
		tk := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
		tk.Header["kid"] = f.signer.KeyID()
		raw, _ := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
		_, err := f.verifier("n1").Verify(raw)
		wantReason(t, err, ReasonBadSignature)
	})
	t.Run("alg confusion HS256 with public key", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"}, ID: "abc",
			ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Minute))}
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tk.Header["kid"] = f.signer.KeyID()
		raw, _ := tk.SignedString([]byte(f.signer.PublicKey()))
		_, err := f.verifier("n1").Verify(raw)
		wantReason(t, err, ReasonBadSignature)
	})
	t.Run("wrong audience", func(t *testing.T) {
		_, err := f.verifier("n2").Verify(f.mint(t, "u", "n1"))
		wantReason(t, err, ReasonWrongAudience)
		if err.(*Error).HTTPStatus() != http.StatusForbidden {
			t.Fatal("wrong audience must be 403")
		}
	})
	t.Run("expired", func(t *testing.T) {
		tok := f.mint(t, "u", "n1")
		v := f.verifier("n1")
		late := f.now.Add(DefaultTTL + DefaultLeeway + time.Second)
		v.WithClock(func() time.Time { return late })
		_, err := v.Verify(tok)
		wantReason(t, err, ReasonExpired)
		if err.(*Error).HTTPStatus() != http.StatusUnauthorized {
			t.Fatal("expired must be 401")
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		tok := f.mint(t, "u", "n1")
		v := f.verifier("n1")
		early := f.now.Add(-time.Minute)
		v.WithClock(func() time.Time { return early })
		_, err := v.Verify(tok)
		wantReason(t, err, ReasonNotYetValid)
	})
	t.Run("replayed", func(t *testing.T) {
		tok := f.mint(t, "u", "n1")
		v := f.verifier("n1")
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(tok)
		wantReason(t, err, ReasonReplayed)
	})
	t.Run("malformed", func(t *testing.T) {
		for _, raw := range []string{"x", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.bm90anNvbg.", strings.Repeat("A", 100)} {
			_, err := f.verifier("n1").Verify(raw)
			wantReason(t, err, ReasonMalformed)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		_, err := f.verifier("n1").Verify(strings.Repeat("A", MaxTokenBytes+1))
		wantReason(t, err, ReasonOversized)
	})
	t.Run("missing", func(t *testing.T) {
		_, err := f.verifier("n1").Verify("")
		wantReason(t, err, ReasonMissing)
	})
	t.Run("missing jti", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"},
			ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Minute))}
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tk.Header["kid"] = f.signer.KeyID()
		raw, _ := tk.SignedString(f.signer.key)
		_, err := f.verifier("n1").Verify(raw)
		wantReason(t, err, ReasonMalformed)
	})
	t.Run("no exp", func(t *testing.T) {
		claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{"n1"}, ID: "abc"}
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tk.Header["kid"] = f.signer.KeyID()
		raw, _ := tk.SignedString(f.signer.key)
		_, err := f.verifier("n1").Verify(raw)
		if err == nil {
			t.Fatal("token without exp accepted")
		}
	})
}

func TestRotation(t *testing.T) {
	oldF := newFixture(t)
	newF := newFixture(t)
	newF.now = oldF.now
	v := oldF.verifier("n1")
	// Before rotation: the new key is unknown.
	_, err := v.Verify(newF.mint(t, "u", "n1"))
	wantReason(t, err, ReasonUnknownKey)
	// Nodes learn both keys, then auth switches.
	both := KeySet{}
	both.Add(oldF.signer.PublicKey())
	both.Add(newF.signer.PublicKey())
	v.SetKeys(both)
	if _, err := v.Verify(oldF.mint(t, "u", "n1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(newF.mint(t, "u", "n1")); err != nil {
		t.Fatal(err)
	}
}

func TestReplayConcurrent(t *testing.T) {
	f := newFixture(t)
	v := f.verifier("n1")
	tok := f.mint(t, "u", "n1")
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(tok); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("token accepted %d times, want once", ok.Load())
	}
}

func TestReplayCacheSweeps(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewReplayCache()
	c.now = func() time.Time { return now }
	for i := 0; i < 1000; i++ {
		c.Add(string(rune('a'+i%26))+time.Duration(i).String(), now.Add(time.Second))
	}
	if c.Len() != 1000 {
		t.Fatalf("len = %d", c.Len())
	}
	now = now.Add(3 * time.Second)
	for i := 0; i < replayShards*20; i++ {
		c.Add("fresh"+time.Duration(i).String(), now.Add(time.Second))
	}
	if c.Len() != replayShards*20 {
		t.Fatalf("expired entries not swept: len = %d", c.Len())
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := GenerateKey()
	privPath, pubPath := filepath.Join(dir, "signing.key"), filepath.Join(dir, "signing.pub")
	if err := WriteKeyPair(privPath, pubPath, priv); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(privPath, pubPath, priv); err == nil {
		t.Fatal("overwrote an existing private key")
	}
	st, _ := os.Stat(privPath)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	got, err := LoadPrivateKey(privPath)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("LoadPrivateKey: %v", err)
	}
	// A second key in the same directory: LoadKeySet(dir) trusts both.
	_, priv2, _ := GenerateKey()
	if err := WriteKeyPair(filepath.Join(dir, "next.key"), filepath.Join(dir, "next.pub"), priv2); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(dir)
	if err != nil || len(ks) != 2 {
		t.Fatalf("LoadKeySet(dir) = %v, %v", ks, err)
	}
	// Bad inputs get clear errors.
	if _, err := LoadPrivateKey(pubPath); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatalf("public key accepted as private: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o644)
	if _, err := LoadKeySet(bad); err == nil {
		t.Fatal("garbage accepted as key set")
	}
}

// TestRejectIssuedBefore: tokens minted before the start are refused, one
// minted later in the start's own millisecond (iat's precision) is not.
func TestRejectIssuedBefore(t *testing.T) {
	f := newFixture(t)
	start := time.Unix(1_800_000_000, 123_400_000) // .1234 s
	f.now = start.Add(-time.Millisecond)
	before := f.mint(t, "alice", "n1")
	f.now = start.Add(500 * time.Microsecond) // same millisecond, after start
	same := f.mint(t, "alice", "n1")
	f.now = start.Add(time.Second)
	v := f.verifier("n1").RejectIssuedBefore(start)
	_, err := v.Verify(before)
	wantReason(t, err, ReasonBeforeStart)
	if _, err := v.Verify(same); err != nil {
		t.Fatalf("a token minted after the start, in its millisecond: %v", err)
	}
}

// TestReplayCacheSweepShrinks: Sweep forgets expired jtis with no Add after
// them, a shard left mostly empty by a burst is made anew at its size, and
// a jti still in force is refused again after all that.
func TestReplayCacheSweepShrinks(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewReplayCache()
	c.now = func() time.Time { return now }
	const burst = replayShards * replayShrinkFloor * 4
	for i := 0; i < burst; i++ {
		if !c.Add(fmt.Sprintf("%032x", i), now.Add(time.Second)) {
			t.Fatalf("jti %d refused on first use", i)
		}
	}
	keep := fmt.Sprintf("%032x", burst)
	c.Add(keep, now.Add(time.Hour))
	peak := 0
	for i := range c.shards {
		peak = max(peak, c.shards[i].peak)
	}
	if peak < replayShrinkFloor {
		t.Fatalf("largest shard peaked at %d, want at least %d for the test to mean anything", peak, replayShrinkFloor)
	}
	now = now.Add(2 * time.Second)
	c.Sweep()
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d after the burst expired and Sweep, want 1", n)
	}
	for i := range c.shards {
		if s := &c.shards[i]; s.peak != len(s.seen) {
			t.Fatalf("shard %d: peak %d with %d entries: its map was not made anew", i, s.peak, len(s.seen))
		}
	}
	if c.Add(keep, now.Add(time.Hour)) {
		t.Fatal("a jti in force was accepted again after the shrink")
	}
	if !c.Add(fmt.Sprintf("%032x", 0), now.Add(time.Second)) {
		t.Fatal("an expired jti is still refused")
	}
}

// TestReplayKeys: a jti of 32 lowercase hex digits is kept as its bytes,
// anything else by a hash, and no two different strings share a key.
func TestReplayKeys(t *testing.T) {
	hexID := "0123456789abcdef0123456789abcdef"
	keys := map[replayKey]string{}
	for _, jti := range []string{
		hexID,
		strings.ToUpper(hexID),
		hexID[:31],
		hexID + "0",
		"",
		"not hex at all, and quite long",
	} {
		k := keyOf(jti)
		if other, dup := keys[k]; dup {
			t.Fatalf("%q and %q share a key", jti, other)
		}
		keys[k] = jti
	}
	if k := keyOf(hexID); hex.EncodeToString(k[:]) != hexID {
		t.Fatalf("keyOf(%q) = %x, want its bytes", hexID, k)
	}
	c := NewReplayCache()
	exp := time.Now().Add(time.Minute)
	for jti := range keys {
		if !c.Add(keys[jti], exp) || c.Add(keys[jti], exp) {
			t.Fatalf("%q: want accepted once, then refused", keys[jti])
		}
	}
}
