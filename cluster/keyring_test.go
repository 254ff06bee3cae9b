package cluster

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

func TestDecodeKeys(t *testing.T) {
	a, b := EncodeKey(testKey), EncodeKey(otherKey)
	for _, in := range []string{a + " " + b, a + "\n" + b + "\n", a + "," + b, " " + a + " ,\t" + b} {
		keys, err := DecodeKeys(in)
		if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], testKey) || !bytes.Equal(keys[1], otherKey) {
			t.Errorf("DecodeKeys(%q) = %d keys, %v", in, len(keys), err)
		}
	}
	for in, want := range map[string]string{
		"":                         "empty",
		" \n":                      "empty",
		a + " junk!":               "key 2 of 2",
		a + " " + a:                "listed twice",
		EncodeKey([]byte("short")): "key 1 of 1",
	} {
		if _, err := DecodeKeys(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeKeys(%.12q...) = %v, want %q", in, err, want)
		}
		if _, err := DecodeKeys(in); err != nil && strings.Contains(err.Error(), a) {
			t.Errorf("the error shows a key: %v", err)
		}
	}
}

func TestExtraKeysValidated(t *testing.T) {
	c := testConfig(1)
	c.ExtraKeys = [][]byte{[]byte("0123456789abcdef")} // 16 bytes outside Dev
	if _, err := Create(c); err == nil || !strings.Contains(err.Error(), "ExtraKeys[0]") {
		t.Errorf("short extra key: %v", err)
	}
	c = testConfig(1)
	c.SecretKey, c.Dev = nil, true
	c.ExtraKeys = [][]byte{testKey}
	if _, err := Create(c); err == nil || !strings.Contains(err.Error(), "ExtraKeys") {
		t.Errorf("extra keys without a key: %v", err)
	}
}

// TestKeyRotation changes a running cluster's gossip key in the three
// rounds SetKeys documents, reloading one member at a time, and checks
// after every reload that all members still see each other and hear each
// other's counts. At the end a member holding only the old key is
// refused and one holding only the new key joins.
func TestKeyRotation(t *testing.T) {
	ms := startCluster(t, 3, nil)
	newKey := bytes.Repeat([]byte{0x3c}, KeySize)
	round := 0
	check := func(what string) {
		t.Helper()
		round++
		for i, m := range ms {
			m.SetConns(round*10 + i)
		}
		probe.Until(t, 60*time.Second, what+": every member hears every count", func() error {
			for _, m := range ms {
				for j, other := range ms {
					x, ok := findMember(m.Members(), other.LocalName())
					if !ok || !x.Alive || x.Conns != round*10+j {
						return fmt.Errorf("%s sees %s as %+v (found %v), want alive with %d", m.LocalName(), other.LocalName(), x, ok, round*10+j)
					}
				}
			}
			return nil
		})
	}
	for _, step := range []struct {
		name string
		keys [][]byte
	}{
		{"learn the new key", [][]byte{testKey, newKey}},
		{"send with the new key", [][]byte{newKey, testKey}},
		{"forget the old key", [][]byte{newKey}},
	} {
		for i, m := range ms {
			if err := m.SetKeys(step.keys); err != nil {
				t.Fatalf("%s on %s: %v", step.name, m.LocalName(), err)
			}
			if m.KeyCount() != len(step.keys) {
				t.Fatalf("%s: %d keys in the ring, want %d", step.name, m.KeyCount(), len(step.keys))
			}
			check(fmt.Sprintf("%s, %d of 3 reloaded", step.name, i+1))
		}
	}

	old := testConfig(4) // testKey only
	oldMember := mustCreate(t, old)
	if n, err := oldMember.Join([]string{ms[0].GossipAddr()}); err == nil && n > 0 {
		t.Errorf("a member with only the old key joined (%d)", n)
	}
	fresh := testConfig(5)
	fresh.SecretKey = newKey
	freshMember := mustCreate(t, fresh)
	var err error
	for try := 0; try < 3; try++ {
		if _, err = freshMember.Join([]string{ms[0].GossipAddr()}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("a member with the new key cannot join: %v", err)
	}

	if err := ms[0].SetKeys([][]byte{[]byte("short")}); err == nil {
		t.Error("SetKeys took a 5-byte key")
	}
	if ms[0].KeyCount() != 1 {
		t.Errorf("a refused SetKeys changed the ring: %d keys", ms[0].KeyCount())
	}
}

func TestSetKeysUnencrypted(t *testing.T) {
	c := testConfig(1)
	c.SecretKey, c.Dev = nil, true
	cl := mustCreate(t, c)
	if err := cl.SetKeys([][]byte{testKey}); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Errorf("SetKeys on plain gossip: %v", err)
	}
}
