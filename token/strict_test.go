package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// signRaw signs header and claims JSON exactly as given, with the fixture's
// key: the signing key is what an attacker would need for these, so each
// case shows what the verifier itself refuses.
func signRaw(f *fixture, headerJSON, claimsJSON string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(headerJSON)) + "." + enc.EncodeToString([]byte(claimsJSON))
	return input + "." + enc.EncodeToString(ed25519.Sign(f.signer.key, []byte(input)))
}

// TestStrictFormat: the verifier accepts exactly the format the Signer mints
// (Claims) and refuses every looser spelling of it, each of which a lenient
// JWT parser accepts.
func TestStrictFormat(t *testing.T) {
	f := newFixture(t)
	now := f.now.Unix()
	hdr := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT"}`, f.signer.KeyID())
	const jti = `"0123456789abcdef0123456789abcdef"`
	claims := func(aud string) string {
		return fmt.Sprintf(`{"sub":"alice","aud":%s,"exp":%d,"nbf":%d,"iat":%d.25,"jti":%s}`, aud, now+30, now, now, jti)
	}

	// The minted format, written by hand: accepted, so every refusal below
	// is for the one thing each case changes.
	if c, err := f.verifier("n1").Verify(signRaw(f, hdr, claims(`"n1"`))); err != nil {
		t.Fatalf("the minted format by hand: %v", err)
	} else if c.IssuedAt.UnixMilli() != now*1000+250 {
		t.Fatalf("iat = %v, want milliseconds kept", c.IssuedAt)
	}

	for _, tc := range []struct {
		name, header, claims string
		// nodes that must refuse it (each with a fresh replay cache)
		nodes []string
		want  Reason
	}{
		{"aud array naming two nodes", hdr, claims(`["n1","n2"]`), []string{"n1", "n2"}, ReasonMalformed},
		{"aud array of one", hdr, claims(`["n1"]`), []string{"n1"}, ReasonMalformed},
		{"exp as a string", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":"%d","nbf":%d,"iat":%d,"jti":%s}`, now+30, now, now, jti), []string{"n1"}, ReasonMalformed},
		{"nbf as a string", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d,"nbf":"%d","iat":%d,"jti":%s}`, now+30, now, now, jti), []string{"n1"}, ReasonMalformed},
		{"iat as a string", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d,"nbf":%d,"iat":"%d","jti":%s}`, now+30, now, now, jti), []string{"n1"}, ReasonMalformed},
		{"duplicate aud, last wins", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n2","exp":%d,"nbf":%d,"iat":%d,"jti":%s,"aud":"n1"}`, now+30, now, now, jti), []string{"n1", "n2"}, ReasonMalformed},
		{"duplicate exp, last wins", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d,"nbf":%d,"iat":%d,"jti":%s,"exp":%d}`, now-3600, now, now, jti, now+30), []string{"n1"}, ReasonMalformed},
		{"duplicate sub", hdr, fmt.Sprintf(`{"sub":"alice","sub":"admin","aud":"n1","exp":%d,"nbf":%d,"iat":%d,"jti":%s}`, now+30, now, now, jti), []string{"n1"}, ReasonMalformed},
		{"duplicate header alg, last wins", fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"JWT","alg":"EdDSA"}`, f.signer.KeyID()), claims(`"n1"`), []string{"n1"}, ReasonMalformed},
		{"duplicate header kid", fmt.Sprintf(`{"alg":"EdDSA","kid":"x","typ":"JWT","kid":%q}`, f.signer.KeyID()), claims(`"n1"`), []string{"n1"}, ReasonMalformed},
		{"invalid UTF-8 in sub", hdr, strings.Replace(claims(`"n1"`), `"alice"`, "\"ali\xffce\"", 1), []string{"n1"}, ReasonMalformed},
		{"lone surrogate escape in sub", hdr, strings.Replace(claims(`"n1"`), `"alice"`, `"ali\ud800ce"`, 1), []string{"n1"}, ReasonMalformed},
		{"invalid UTF-8 in the header", strings.Replace(hdr, `"JWT"`, "\"JWT\xc3\"", 1), claims(`"n1"`), []string{"n1"}, ReasonMalformed},
		{"case-folded member name", hdr, strings.Replace(claims(`"n1"`), `"aud"`, `"AUD"`, 1), []string{"n1"}, ReasonMalformed},
		{"unknown claim", hdr, strings.Replace(claims(`"n1"`), `{`, `{"admin":true,`, 1), []string{"n1"}, ReasonMalformed},
		{"unknown header member", strings.Replace(hdr, `{`, `{"jku":"https://example.com/k",`, 1), claims(`"n1"`), []string{"n1"}, ReasonMalformed},
		{"no nbf", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d,"iat":%d,"jti":%s}`, now+30, now, jti), []string{"n1"}, ReasonMalformed},
		{"no iat", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d,"nbf":%d,"jti":%s}`, now+30, now, jti), []string{"n1"}, ReasonMalformed},
		{"exp not a whole second", hdr, fmt.Sprintf(`{"sub":"alice","aud":"n1","exp":%d.5,"nbf":%d,"iat":%d,"jti":%s}`, now+30, now, now, jti), []string{"n1"}, ReasonMalformed},
		{"null sub", hdr, strings.Replace(claims(`"n1"`), `"alice"`, `null`, 1), []string{"n1"}, ReasonMalformed},
		{"jti not hex", hdr, strings.Replace(claims(`"n1"`), jti, `"hand-made"`, 1), []string{"n1"}, ReasonMalformed},
		{"typ missing", fmt.Sprintf(`{"alg":"EdDSA","kid":%q}`, f.signer.KeyID()), claims(`"n1"`), []string{"n1"}, ReasonMalformed},
		{"trailing data after the claims", hdr, claims(`"n1"`) + ` {}`, []string{"n1"}, ReasonMalformed},
		{"rb false", hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":false}`, 1), []string{"n1"}, ReasonMalformed},
		{"rb null", hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":null}`, 1), []string{"n1"}, ReasonMalformed},
		{"rb as a number", hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":1}`, 1), []string{"n1"}, ReasonMalformed},
		{"rb as a string", hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":"true"}`, 1), []string{"n1"}, ReasonMalformed},
		{"duplicate rb", hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":true,"rb":true}`, 1), []string{"n1"}, ReasonMalformed},
		{"case-folded rb", hdr, strings.Replace(claims(`"n1"`), `}`, `,"RB":true}`, 1), []string{"n1"}, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := signRaw(f, tc.header, tc.claims)
			for _, node := range tc.nodes {
				_, err := f.verifier(node).Verify(raw)
				wantReason(t, err, tc.want)
				t.Logf("at %s: %v", node, err)
			}
		})
	}

	// The rebalanced form, written by hand: accepted, and only it carries
	// the mark.
	if c, err := f.verifier("n1").Verify(signRaw(f, hdr, strings.Replace(claims(`"n1"`), `}`, `,"rb":true}`, 1))); err != nil {
		t.Fatalf("the minted rebalanced format by hand: %v", err)
	} else if !c.Rebalanced {
		t.Fatal("rb:true not reported as Rebalanced")
	}

	// One token, one spelling: base64 with padding bits set decodes to the
	// same bytes but is refused.
	t.Run("non-canonical base64", func(t *testing.T) {
		tok := f.mint(t, "alice", "n1")
		last := tok[len(tok)-1]
		alt := strings.IndexByte("AQgw", last) // a 64-byte signature leaves 4 padding bits in its last character
		if alt < 0 {
			t.Fatalf("unexpected last character %q", last)
		}
		bumped := tok[:len(tok)-1] + string("BRhx"[alt])
		_, err := f.verifier("n1").Verify(bumped)
		wantReason(t, err, ReasonBadSignature)
		if _, err := f.verifier("n1").Verify(tok); err != nil {
			t.Fatalf("the original: %v", err)
		}
	})
}
