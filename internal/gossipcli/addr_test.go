package gossipcli

import "testing"

func TestSplitHostPort(t *testing.T) {
	type hp struct {
		host string
		port int
	}
	for in, want := range map[string]hp{
		"10.0.0.1:8000":   {"10.0.0.1", 8000},
		"10.0.0.1":        {"10.0.0.1", 7946},
		"node.internal":   {"node.internal", 7946},
		"node.internal:1": {"node.internal", 1},
		":7000":           {"", 7000},
		"0.0.0.0:0":       {"0.0.0.0", 0},
		"[::1]:9":         {"::1", 9},
		"[::1]":           {"::1", 7946},
		"::1":             {"::1", 7946},
		"fe80::1":         {"fe80::1", 7946},
	} {
		h, p, err := SplitHostPort(in, 7946)
		if err != nil || h != want.host || p != want.port {
			t.Errorf("SplitHostPort(%q) = %q, %d, %v; want %q, %d", in, h, p, err, want.host, want.port)
		}
	}
	for _, bad := range []string{"", "h:x", "h:-1", "h:65536", "[nope]", "[::1]:x", "a:b:c", "a b", "10.0.0.1:", "[10.0.0.1"} {
		if h, p, err := SplitHostPort(bad, 7946); err == nil {
			t.Errorf("SplitHostPort(%q) = %q, %d; want an error", bad, h, p)
		}
	}
}

func TestJoinAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":        "10.0.0.1:7946",
		" 10.0.0.1 ":      "10.0.0.1:7946",
		"10.0.0.1:8000":   "10.0.0.1:8000",
		"host":            "host:7946",
		"[::1]":           "[::1]:7946",
		"::1":             "[::1]:7946",
		"[::1]:9":         "[::1]:9",
		"node.internal:1": "node.internal:1",
	} {
		if got, err := JoinAddr(in, 7946); err != nil || got != want {
			t.Errorf("JoinAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":7946", "h:0", "h:x", "a:b:c"} {
		if got, err := JoinAddr(bad, 7946); err == nil {
			t.Errorf("JoinAddr(%q) = %q; want an error", bad, got)
		}
	}
}
