package token

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to the parser. Nothing but the two
// tokens the fixture minted (a plain one and a rebalanced one) may ever
// verify, every rejection must carry a reason, and the parser must not
// panic.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := fx.mint(f, "alice", "n1")
	moved, _, err := fx.signer.MintRebalanced("alice", "n1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(moved)
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Repeat("A", MaxTokenBytes+1))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add(good[:len(good)-2])
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Fuzz(func(t *testing.T, raw string) {
		v := NewVerifier("n1", fx.keys).WithClock(func() time.Time { return fx.now })
		c, err := v.Verify(raw)
		if err == nil {
			if (raw != good || c.Rebalanced) && (raw != moved || !c.Rebalanced) || c.Subject != "alice" {
				t.Fatalf("accepted a token the signer never minted: %q", raw)
			}
			return
		}
		if ReasonOf(err) == "" {
			t.Fatalf("rejection without reason: %v", err)
		}
	})
}
