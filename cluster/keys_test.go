package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(p, []byte(EncodeKey(testKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(testKey) {
		t.Fatalf("LoadKeyFile = %x, want %x", got, testKey)
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "read gossip key file"},
		{"empty", write("empty", " \n"), "empty"},
		{"not base64", write("junk", "not*base64!"), "not valid base64"},
		{"wrong length", write("short", EncodeKey([]byte("0123456789"))), "got 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKeyFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadKeyFile error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCountMsgRoundTrip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []countMsg{
		{name: "n1", seq: 1, conns: 0},
		{name: strings.Repeat("x", MaxNameLen), seq: 1<<64 - 1, conns: 1 << 30},
	} {
		b := c.encode(priv)
		if len(b)+len(countEventName) > 512 {
			t.Fatalf("payload %d bytes exceeds serf's 512", len(b))
		}
		got, err := decodeCount(b)
		if err != nil || got.countMsg != c || !got.verify(pub) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", c, got, err)
		}
		if got.verify(otherPub) {
			t.Fatal("verified with another member's key")
		}
		// Any change to the signed part breaks the signature.
		for i := 1; i < len(b)-countSigSize; i++ {
			m := bytes.Clone(b)
			m[i] ^= 1
			if d, err := decodeCount(m); err == nil && d.verify(pub) {
				t.Fatalf("byte %d flipped and still verified", i)
			}
		}
	}
	for _, bad := range [][]byte{nil, {9, 1, 1, 'a'}, {1, 1, 1, 'a'}, {2}, {2, 1}, {2, 1, 1}, {2, 0x80}} {
		if _, err := decodeCount(bad); err == nil {
			t.Fatalf("decodeCount(%v) succeeded", bad)
		}
	}
}
