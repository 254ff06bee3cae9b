package token

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// BenchmarkVerify is what a node spends on one connection's token, and the
// parts it is made of: the Ed25519 signature check is most of it.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	toks := make([]string, 4096)
	for i := range toks {
		toks[i] = f.mint(b, fmt.Sprintf("user-%d", i), "n1")
	}
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%len(toks) == 0 {
				// Fresh verifier: the tokens are single use.
				b.StopTimer()
				v := f.verifier("n1")
				b.StartTimer()
				benchVerifier = v
			}
			if _, err := benchVerifier.Verify(toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		v := f.verifier("n1")
		for i := 0; b.Loop(); i++ {
			if _, err := v.Check(toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := split(toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, _ := split(toks[0])
	pub := f.keys[p.header.Kid]
	b.Run("ed25519.Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, []byte(p.input), p.sig) {
				b.Fatal("bad signature")
			}
		}
	})
	b.Run("decodeClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeClaims(p.claims); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replay.Add", func(b *testing.B) {
		b.ReportAllocs()
		c := NewReplayCache()
		exp := f.now.Add(DefaultTTL)
		ids := make([]string, 1<<16)
		for i := range ids {
			ids[i] = fmt.Sprintf("%032x", i)
		}
		for i := 0; b.Loop(); i++ {
			if i%len(ids) == 0 {
				b.StopTimer()
				c = NewReplayCache()
				b.StartTimer()
			}
			c.Add(ids[i%len(ids)], exp)
		}
	})
}

var benchVerifier *Verifier
