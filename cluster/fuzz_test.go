package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"testing"

	"github.com/hashicorp/serf/serf"
)

// FuzzCountEvent feeds arbitrary payloads to the count-event handler, as
// any member holding the gossip key could send them. It must not panic,
// must never change a member's count unless the member's own key signed the
// payload (only the seeds are so signed), and must never let a payload name
// a member it did not come from.
func FuzzCountEvent(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	genuine := countMsg{name: "n1", seq: 100, conns: 7}.encode(priv)
	f.Add(genuine)
	f.Add(countMsg{name: "n1", seq: 1 << 62, conns: 999}.encode(other))
	f.Add(countMsg{name: "n2", seq: 5, conns: 3}.encode(priv))
	f.Add(forgedCount(1, "n1", 1<<62, 999, nil))
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Add(bytes.Repeat([]byte{0xff}, 300))

	f.Fuzz(func(t *testing.T, payload []byte) {
		c := &Cluster{
			conf:    Config{Name: "observer"},
			log:     slog.New(slog.DiscardHandler),
			members: map[string]*entry{},
		}
		c.members["n1"] = &entry{m: Member{Name: "n1", Role: RoleNode, Alive: true, Conns: 1}, seq: 50, known: true, key: pub}
		c.handle(serf.UserEvent{Name: countEventName, Payload: payload})
		n1 := c.members["n1"]
		signed := false
		if m, err := decodeCount(payload); err == nil && m.name == "n1" && m.verify(pub) {
			signed = true
		}
		if !signed && (n1.m.Conns != 1 || n1.seq != 50) {
			t.Fatalf("a payload n1 did not sign changed its count: %+v seq %d", n1.m, n1.seq)
		}
		if signed && bytes.Equal(payload, genuine) && n1.m.Conns != 7 {
			t.Fatalf("n1's own count was not applied: %+v", n1.m)
		}
		for name, e := range c.members {
			if name != "n1" && (e.known || e.m.Conns != 0 || e.m.Alive) {
				t.Fatalf("a payload made %q a member with a count: %+v", name, e)
			}
			if name != "n1" && len(e.pending) == 0 {
				t.Fatalf("an unknown member %q with nothing pending", name)
			}
		}
		if c.unknown > maxUnknownEntries || c.unknown != len(c.members)-1 {
			t.Fatalf("unknown = %d with %d entries", c.unknown, len(c.members))
		}
		// A later member event with n1's real key never applies a pending
		// payload n1 did not sign.
		for name := range c.members {
			if name == "n1" {
				continue
			}
			c.handle(serf.MemberEvent{Type: serf.EventMemberJoin, Members: []serf.Member{{
				Name: name, Status: serf.StatusAlive,
				Tags: map[string]string{tagRole: string(RoleNode), tagCountKey: encodeCountKey(pub)},
			}}})
			got := c.members[name]
			wantSigned := false
			if m, err := decodeCount(payload); err == nil && m.name == name && m.verify(pub) {
				wantSigned = true
			}
			if !wantSigned && (got.m.Conns != 0 || !got.m.UpdatedAt.IsZero()) {
				t.Fatalf("a pending payload not signed by %q was applied: %+v", name, got.m)
			}
		}
	})
}
