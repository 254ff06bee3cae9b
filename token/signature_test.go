package token

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// TestSignatureCheckMatchesStdlib proves the node accepts exactly the
// signatures crypto/ed25519 accepts, on the cases where Ed25519
// implementations are known to differ: non-canonical S, small-order and
// non-canonical R and A, and plain forgeries.
func TestSignatureCheckMatchesStdlib(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0"
	sig := ed25519.Sign(priv, []byte(msg))

	// S + L: the same signature with a non-canonical S, which RFC 8032
	// and crypto/ed25519 refuse (malleability).
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	s := new(big.Int).SetBytes(reverse(sig[32:]))
	sPlusL := append(append([]byte{}, sig[:32]...), leBytes(new(big.Int).Add(s, l))...)

	identity := mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")
	// y = p + 1: a non-canonical encoding of the identity (y = 1).
	nonCanonicalIdentity := mustHex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	// A small-order point of order 4 (y = 0).
	order4 := mustHex(t, "0000000000000000000000000000000000000000000000000000000000000000")
	zero := make([]byte, 32)

	flipped := func(b []byte, i int) []byte {
		c := append([]byte{}, b...)
		c[i] ^= 1
		return c
	}
	cat := func(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }
	cases := []struct {
		name string
		pub  []byte
		msg  string
		sig  []byte
	}{
		{"valid", pub, msg, sig},
		{"other message", pub, msg + "x", sig},
		{"R bit flipped", pub, msg, flipped(sig, 3)},
		{"S bit flipped", pub, msg, flipped(sig, 40)},
		{"S + L", pub, msg, sPlusL},
		{"S all ones", pub, msg, cat(sig[:32], mustHex(t, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0f"))},
		{"identity key, identity R, S 0", identity, msg, cat(identity, zero)},
		{"identity key, non-canonical identity R", identity, msg, cat(nonCanonicalIdentity, zero)},
		{"non-canonical identity key", nonCanonicalIdentity, msg, cat(identity, zero)},
		{"order-4 key", order4, msg, cat(identity, zero)},
		{"order-4 R", pub, msg, cat(order4, sig[32:])},
		{"key not on the curve", mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000"), msg, sig},
		{"all zero signature", pub, msg, make([]byte, 64)},
	}
	for _, c := range cases {
		want := ed25519.Verify(c.pub, []byte(c.msg), c.sig)
		xp, err := voi.NewExpandedPublicKey(voi.PublicKey(c.pub))
		if err != nil {
			xp = nil
		}
		if got := verifySignature(xp, c.msg, c.sig); got != want {
			t.Errorf("%s: node's check says %v, crypto/ed25519 says %v", c.name, got, want)
		}
	}
	// Random signatures over many keys and messages agree too.
	for i := range 200 {
		pub, priv, _ := GenerateKey()
		m := msg + string(rune('a'+i%26))
		sig := ed25519.Sign(priv, []byte(m))
		xp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
		if err != nil {
			t.Fatal(err)
		}
		if !verifySignature(xp, m, sig) || verifySignature(xp, m, flipped(sig, i%64)) || verifySignature(xp, m+".", sig) {
			t.Fatalf("key %d: the node's check disagrees with crypto/ed25519", i)
		}
	}
}

// TestKeyNotOnCurve: a trusted "key" that is no curve point verifies
// nothing, as with crypto/ed25519.
func TestKeyNotOnCurve(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "u", "n1")
	bad := KeySet{}
	for kid := range f.keys {
		bad[kid] = mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")
	}
	v := NewVerifier("n1", bad).WithClock(func() time.Time { return f.now })
	_, err := v.Verify(tok)
	wantReason(t, err, ReasonBadSignature)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// leBytes is n as 32 little-endian bytes.
func leBytes(n *big.Int) []byte {
	b := make([]byte, 32)
	be := n.Bytes()
	for i := range be {
		b[i] = be[len(be)-1-i]
	}
	return b
}
