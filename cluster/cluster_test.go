package cluster

import (
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/serf/serf"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

func TestThreeNodeCluster(t *testing.T) {
	ms := startCluster(t, 3, func(c *Config) {
		switch c.Name {
		case "n2":
			c.Zone = "us-east-1b"
			c.WSScheme = "wss"
		case "n3":
			c.Role = RoleAuth
		}
	})
	n1, n2, n3 := ms[0], ms[1], ms[2]

	// Readers hammer the view while gossip writes it (run with -race).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func(m *Cluster) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = m.Members()
					_ = m.Nodes()
					time.Sleep(time.Millisecond)
				}
			}
		}(m)
	}
	defer func() { close(stop); wg.Wait() }()

	t.Run("tags", func(t *testing.T) {
		got, ok := findMember(n3.Members(), "n2")
		if !ok {
			t.Fatal("n3 does not know n2")
		}
		want := Member{Name: "n2", Role: RoleNode, Addr: "127.0.0.2", Port: 8002, Scheme: "wss", Cap: 100, Zone: "us-east-1b", Alive: true}
		got.UpdatedAt, got.Conns = time.Time{}, 0
		if got != want {
			t.Fatalf("n3 sees n2 as %+v, want %+v", got, want)
		}
		if u := got.URL(); u != "wss://127.0.0.2:8002/ws" {
			t.Fatalf("URL() = %q", u)
		}
		if plain, _ := findMember(n3.Members(), "n1"); plain.Scheme != "ws" || plain.URL() != "ws://127.0.0.1:8001/ws" {
			t.Fatalf("n1 (plain) seen as %+v, URL %q", plain, plain.URL())
		}
		auth, _ := findMember(n1.Members(), "n3")
		if auth.Role != RoleAuth || auth.Addr != "" || auth.Cap != 0 {
			t.Fatalf("auth member seen as %+v", auth)
		}
		nodes := n1.Nodes()
		if len(nodes) != 2 || nodes[0].Name != "n1" || nodes[1].Name != "n2" {
			t.Fatalf("Nodes() = %+v, want n1 and n2 only", nodes)
		}
	})

	t.Run("counts", func(t *testing.T) {
		n1.SetConns(42)
		if got, _ := findMember(n1.Members(), "n1"); got.Conns != 42 {
			t.Fatalf("local view of own count = %d, want 42 at once", got.Conns)
		}
		for _, obs := range []*Cluster{n2, n3} {
			probe.Until(t, 10*time.Second, obs.LocalName()+" sees n1 conns=42", func() error {
				m, ok := obs.member("n1")
				return probe.Check(ok && m.Conns == 42 && !m.UpdatedAt.IsZero(), "n1 known %t as %+v", ok, m)
			})
		}
		// A burst of changes coalesces; the last value wins everywhere.
		for i := 0; i <= 100; i++ {
			n2.SetConns(i)
		}
		for _, obs := range []*Cluster{n1, n3} {
			probe.Until(t, 10*time.Second, obs.LocalName()+" sees n2 conns=100", func() error {
				m, ok := obs.member("n2")
				return probe.Check(ok && m.Conns == 100, "n2 known %t as %+v", ok, m)
			})
		}
	})

	t.Run("draining", func(t *testing.T) {
		if err := n2.SetDraining(true); err != nil {
			t.Fatal(err)
		}
		probe.Until(t, 10*time.Second, "n1 sees n2 draining", func() error {
			m, ok := n1.member("n2")
			return probe.Check(ok && m.Draining, "n2 known %t as %+v", ok, m)
		})
		// Draining does not lose the count.
		if m, _ := n1.member("n2"); m.Conns != 100 {
			t.Fatalf("n2 conns after draining = %d, want 100", m.Conns)
		}
		if err := n2.SetDraining(false); err != nil {
			t.Fatal(err)
		}
		probe.Until(t, 10*time.Second, "n3 sees n2 not draining", func() error {
			m, ok := n3.member("n2")
			return probe.Check(ok && !m.Draining, "n2 known %t as %+v", ok, m)
		})
	})

	t.Run("not ready", func(t *testing.T) {
		if err := n2.SetReady(false); err != nil {
			t.Fatal(err)
		}
		probe.Until(t, 10*time.Second, "n1 sees n2 not ready", func() error {
			m, ok := n1.member("n2")
			return probe.Check(ok && m.NotReady && !m.Draining, "n2 known %t as %+v", ok, m)
		})
		if err := n2.SetReady(true); err != nil {
			t.Fatal(err)
		}
		probe.Until(t, 10*time.Second, "n3 sees n2 ready", func() error {
			m, ok := n3.member("n2")
			return probe.Check(ok && !m.NotReady, "n2 known %t as %+v", ok, m)
		})
	})

	t.Run("killed member fails", func(t *testing.T) {
		if err := n2.Shutdown(); err != nil { // no Leave: looks like a crash
			t.Fatal(err)
		}
		probe.Until(t, 15*time.Second, "n1 drops failed n2 from Nodes()", func() error {
			m, ok := findMember(n1.Nodes(), "n2")
			return probe.Check(!ok, "n2 still listed as %+v", m)
		})
		m, ok := findMember(n1.Members(), "n2")
		if ok && m.Alive {
			t.Fatalf("failed n2 still alive in Members(): %+v", m)
		}
	})

	t.Run("graceful leave", func(t *testing.T) {
		if err := n3.Leave(); err != nil {
			t.Fatal(err)
		}
		probe.Until(t, 15*time.Second, "n1 sees n3 not alive", func() error {
			m, ok := n1.member("n3")
			return probe.Check(!ok || !m.Alive, "n3 listed as %+v", m)
		})
		// Left and failed members are reaped after TombstoneTimeout /
		// ReconnectTimeout (5 s in LocalConfig).
		probe.Until(t, 30*time.Second, "n1 reaps n2 and n3", func() error {
			ms := n1.Members()
			return probe.Check(len(ms) == 1, "members %+v", ms)
		})
	})
}

func TestCountsTagsMode(t *testing.T) {
	ms := startCluster(t, 2, func(c *Config) { c.CountMode = CountsTags })
	ms[0].SetConns(7)
	probe.Until(t, 10*time.Second, "n2 sees n1 conns=7 via tags", func() error {
		m, ok := ms[1].member("n1")
		return probe.Check(ok && m.Conns == 7, "n1 known %t as %+v", ok, m)
	})
	if err := ms[0].SetDraining(true); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 10*time.Second, "n2 sees n1 draining with conns=7", func() error {
		m, ok := ms[1].member("n1")
		return probe.Check(ok && m.Draining && m.Conns == 7, "n1 known %t as %+v", ok, m)
	})
}

func TestJoinNeedsTheKey(t *testing.T) {
	ms := startCluster(t, 2, nil)
	for _, tc := range []struct {
		name string
		conf func(*Config)
	}{
		{"different key", func(c *Config) { c.SecretKey = otherKey }},
		{"no key (dev)", func(c *Config) { c.SecretKey = nil; c.Dev = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(9)
			c.Name = "intruder"
			c.TCPTimeout = 500 * time.Millisecond
			tc.conf(c)
			in := mustCreate(t, c)
			if n, err := in.Join([]string{ms[0].GossipAddr(), ms[1].GossipAddr()}); err == nil {
				t.Fatalf("join without the cluster key succeeded (contacted %d)", n)
			}
			time.Sleep(500 * time.Millisecond)
			for _, m := range ms {
				if _, ok := m.member("intruder"); ok {
					t.Fatalf("%s lists the intruder", m.LocalName())
				}
			}
			if got := len(in.Members()); got != 1 {
				t.Fatalf("intruder sees %d members, want only itself", got)
			}
			_ = in.Shutdown()
		})
	}
}

// rawUserEvent is serf's messageUserEvent, encoded the way serf does.
type rawUserEvent struct {
	LTime   serf.LamportTime
	Name    string
	Payload []byte
	CC      bool
}

// injectCount sends one plaintext UDP gossip packet carrying a serf count
// event with payload straight to addr, as a keyless process would.
func injectCount(t *testing.T, addr string, payload []byte) {
	t.Helper()
	var buf []byte
	buf = append(buf, 8) // memberlist userMsg
	buf = append(buf, 3) // serf messageUserEventType
	ev := rawUserEvent{LTime: 1 << 20, Name: countEventName, Payload: payload}
	var enc []byte
	if err := codec.NewEncoderBytes(&enc, &codec.MsgpackHandle{}).Encode(&ev); err != nil {
		t.Fatal(err)
	}
	buf = append(buf, enc...)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func TestPlaintextCountInjection(t *testing.T) {
	// The forged count has the highest seq, so if it were ever accepted
	// no genuine count could replace it.
	forged := countMsg{name: "n1", seq: math.MaxUint64 >> 1, conns: 999}

	t.Run("control: unencrypted dev cluster accepts it when n1 signed it", func(t *testing.T) {
		ms := startCluster(t, 2, func(c *Config) { c.SecretKey = nil; c.Dev = true })
		injectCount(t, ms[1].GossipAddr(), forged.encode(ms[0].countKey))
		probe.Until(t, 10*time.Second, "dev n2 takes the injected count", func() error {
			m, _ := ms[1].member("n1")
			return probe.Equal("n1 conns", m.Conns, 999)
		})
	})

	t.Run("encrypted cluster ignores it", func(t *testing.T) {
		ms := startCluster(t, 2, nil)
		for i := 0; i < 3; i++ {
			injectCount(t, ms[1].GossipAddr(), forged.encode(ms[0].countKey))
		}
		time.Sleep(300 * time.Millisecond)
		ms[0].SetConns(5)
		probe.Until(t, 10*time.Second, "n2 sees the genuine count 5", func() error {
			m, _ := ms[1].member("n1")
			return probe.Equal("n1 conns", m.Conns, 5)
		})
		time.Sleep(300 * time.Millisecond)
		if m, _ := ms[1].member("n1"); m.Conns != 5 {
			t.Fatalf("n2 sees n1 conns=%d after injection, want 5", m.Conns)
		}
	})
}

func TestDevModeWithoutKey(t *testing.T) {
	ms := startCluster(t, 2, func(c *Config) { c.SecretKey = nil; c.Dev = true })
	ms[1].SetConns(3)
	probe.Until(t, 10*time.Second, "n1 sees n2 conns=3", func() error {
		m, _ := ms[0].member("n2")
		return probe.Equal("n2 conns", m.Conns, 3)
	})
}

func TestCreateValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" = must succeed
	}{
		{"no key outside dev", func(c *Config) { c.SecretKey = nil }, "gossip key is required"},
		{"short key outside dev", func(c *Config) { c.SecretKey = testKey[:16] }, "must be 32 bytes"},
		{"bad key length", func(c *Config) { c.SecretKey = testKey[:20]; c.Dev = true }, "16, 24 or 32"},
		{"16-byte key in dev", func(c *Config) { c.SecretKey = testKey[:16]; c.Dev = true }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Name is required"},
		{"name with space", func(c *Config) { c.Name = "a b" }, "whitespace"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("x", MaxNameLen+1) }, "limit is 128"},
		{"node without public addr", func(c *Config) { c.PublicAddr = " " }, "PublicAddr is required"},
		{"node without cap", func(c *Config) { c.Cap = 0 }, "Cap must be > 0"},
		{"bad ws port", func(c *Config) { c.WSPort = 70000 }, "WSPort"},
		{"node without scheme", func(c *Config) { c.WSScheme = "" }, "WSScheme"},
		{"node with http scheme", func(c *Config) { c.WSScheme = "https" }, "WSScheme"},
		{"starts not ready", func(c *Config) { c.NotReady = true }, ""},
		{"unknown role", func(c *Config) { c.Role = "proxy" }, `Role "proxy"`},
		{"no role", func(c *Config) { c.Role = "" }, `Role ""`},
		{"zero count interval", func(c *Config) { c.CountInterval = 0 }, "CountInterval must be > 0"},
		{"zero probe interval", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval must be > 0"},
		{"zero reap interval", func(c *Config) { c.ReapInterval = 0 }, "ReapInterval must be > 0"},
		{"zero event buffer", func(c *Config) { c.EventBuffer = 0 }, "EventBuffer must be > 0"},
		{"zero suspicion mult", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult must be > 0"},
		{"negative push/pull", func(c *Config) { c.PushPullInterval = -1 }, "PushPullInterval must not be negative"},
		{"unknown count mode", func(c *Config) { c.CountMode = 7 }, "CountMode 7"},
		{"memberlist's zero settings", func(c *Config) {
			c.IndirectChecks, c.PushPullInterval, c.GossipToTheDeadTime, c.LeavePropagateDelay = 0, 0, 0, 0
		}, ""},
		{"nil logger", func(c *Config) { c.Logger = nil }, ""},
		{"auth needs no public addr", func(c *Config) { c.Role = RoleAuth; c.PublicAddr = ""; c.Cap = 0 }, ""},
		{"tags too large (addr)", func(c *Config) { c.PublicAddr = strings.Repeat("h", 480) + ".example.com" }, "limit is 512"},
		{"tags too large (zone)", func(c *Config) { c.Zone = strings.Repeat("z", 500) }, "limit is 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(1)
			tc.mutate(c)
			cl, err := Create(c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				_ = cl.Shutdown()
				return
			}
			if err == nil {
				_ = cl.Shutdown()
				t.Fatalf("Create succeeded, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Create error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestTagSizeBoundary(t *testing.T) {
	f := staticFacts{role: RoleNode, addr: "a", port: 65535, scheme: "wss", cap: 1 << 30, zone: "z"}
	for _, mode := range []CountMode{CountsUserEvents, CountsTags} {
		// Grow the address until the check trips; it must trip exactly
		// when serf's own encoding exceeds MaxTagBytes.
		g := f
		for len(g.addr) < 600 {
			err := checkTags(g, mode)
			w := g
			w.draining, w.notReady = true, true
			w.countKey = strings.Repeat("k", 43)
			n, _ := encodedTagSize(w.tags(mode, -1<<31))
			if (err != nil) != (n > MaxTagBytes) {
				t.Fatalf("mode %v addr len %d: encoded %d bytes, err=%v", mode, len(g.addr), n, err)
			}
			g.addr += "a"
		}
	}
}

// TestTagsFitLongDNSName runs a node with the longest DNS name there is
// (253 characters) and a long real zone name, with every tag that comes and
// goes set at once (wss, not ready, draining, the count key, and the widest
// count of CountsTags mode): serf must accept every change and the other
// member must read every fact back.
func TestTagsFitLongDNSName(t *testing.T) {
	label := strings.Repeat("n", 63)
	name := label + "." + label + "." + label + "." + strings.Repeat("w", 58) + ".io" // 253 bytes
	if len(name) != 253 {
		t.Fatalf("test name is %d bytes, want 253", len(name))
	}
	const zone = "us-east-1-wl1-bos-wlz-1" // a Wavelength zone, among AWS's longest names
	for _, mode := range []CountMode{CountsUserEvents, CountsTags} {
		t.Run(mode.String(), func(t *testing.T) {
			ms := startCluster(t, 2, func(c *Config) {
				c.CountMode = mode
				if c.Name == "n1" {
					c.PublicAddr, c.Zone, c.WSScheme, c.WSPort, c.Cap = name, zone, "wss", 65535, 1<<30
					c.NotReady = true
				}
			})
			n, err := encodedTagSize(ms[0].serf.LocalMember().Tags)
			if err != nil {
				t.Fatal(err)
			}
			widest := staticFacts{role: RoleNode, addr: name, port: 65535, scheme: "wss", cap: 1 << 30, zone: zone,
				draining: true, notReady: true, countKey: strings.Repeat("k", 43)}
			w, err := encodedTagSize(widest.tags(mode, -1<<31))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d of %d tag bytes at start, %d at the widest", mode, n, MaxTagBytes, w)
			if w > MaxTagBytes {
				t.Fatalf("the widest tags are %d bytes, over %d", w, MaxTagBytes)
			}
			if err := ms[0].SetDraining(true); err != nil {
				t.Fatalf("SetDraining with a 253-byte name: %v", err)
			}
			ms[0].SetConns(1<<31 - 1)
			probe.Until(t, 10*time.Second, "n2 sees n1 with every tag", func() error {
				m, ok := ms[1].member("n1")
				return probe.Check(ok && m.Addr == name && m.Zone == zone && m.Scheme == "wss" && m.Port == 65535 &&
					m.Cap == 1<<30 && m.NotReady && m.Draining && m.Conns == 1<<31-1, "n1 known %t as %+v", ok, m)
			})
			if err := ms[0].SetReady(true); err != nil {
				t.Fatalf("SetReady: %v", err)
			}
			probe.Until(t, 10*time.Second, "n2 sees n1 ready", func() error {
				m, _ := ms[1].member("n1")
				return probe.Check(!m.NotReady, "n1 as %+v", m)
			})
		})
	}
}

func TestJoinErrors(t *testing.T) {
	c := mustCreate(t, testConfig(1))
	if _, err := c.Join(nil); err == nil || !strings.Contains(err.Error(), "no addresses") {
		t.Fatalf("Join(nil) = %v", err)
	}
	// Nothing listens there (a port we just released on another loopback).
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := c.Join([]string{addr}); err == nil {
		t.Fatal("Join to a closed port succeeded")
	}
}

func TestShutdownTwice(t *testing.T) {
	c := mustCreate(t, testConfig(1))
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestLateJoinerLearnsCounts(t *testing.T) {
	ms := startCluster(t, 2, nil)
	ms[0].SetConns(11)
	probe.Until(t, 10*time.Second, "n2 sees n1 conns=11", func() error {
		m, _ := ms[1].member("n1")
		return probe.Equal("n1 conns", m.Conns, 11)
	})
	late := mustCreate(t, testConfig(3))
	if _, err := late.Join([]string{ms[1].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	// From the join's event replay or, at the latest, the periodic refresh
	// (CountRefresh, 1 s in LocalConfig).
	probe.Until(t, 10*time.Second, "late joiner sees n1 conns=11", func() error {
		m, ok := late.member("n1")
		return probe.Check(ok && m.Conns == 11 && m.Alive, "n1 known %t as %+v", ok, m)
	})
}

func TestMemberURL(t *testing.T) {
	for _, tc := range []struct {
		m    Member
		want string
	}{
		{Member{Addr: "n-3.ws.example.com", Port: 443, Scheme: "wss"}, "wss://n-3.ws.example.com/ws"},
		{Member{Addr: "203.0.113.7", Port: 443, Scheme: "wss"}, "wss://203.0.113.7/ws"},
		{Member{Addr: "203.0.113.7", Port: 8443, Scheme: "wss"}, "wss://203.0.113.7:8443/ws"},
		{Member{Addr: "2001:db8::7", Port: 443, Scheme: "wss"}, "wss://[2001:db8::7]/ws"},
		{Member{Addr: "2001:db8::7", Port: 8080, Scheme: "ws"}, "ws://[2001:db8::7]:8080/ws"},
		{Member{Addr: "127.0.0.1", Port: 80, Scheme: "ws"}, "ws://127.0.0.1/ws"},
		{Member{Addr: "127.0.0.1", Port: 443}, "ws://127.0.0.1:443/ws"}, // no scheme: an old member, plain
	} {
		if got := tc.m.URL(); got != tc.want {
			t.Errorf("%+v: URL() = %q, want %q", tc.m, got, tc.want)
		}
	}
}
