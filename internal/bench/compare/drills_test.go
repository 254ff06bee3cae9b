package compare

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The drills at CI size: 300 managed clients each, on the real binaries.

func runDrill(t *testing.T, drill string, tune func(*DrillConfig)) *DrillResult {
	t.Helper()
	cfg := DefaultDrillConfig(drill)
	cfg.Env = servers(t)
	cfg.Progress = testWriter{t}
	cfg.Clients = 300
	cfg.Rate = 1000
	cfg.RecoverTimeout = 30 * time.Second
	if tune != nil {
		tune(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Drill(ctx, cfg)
	if res != nil {
		var buf bytes.Buffer
		res.WriteTable(&buf)
		t.Logf("\n%s", buf.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients != cfg.Clients || res.Affected <= 0 {
		t.Fatalf("clients %d, affected %d", res.Clients, res.Affected)
	}
	return res
}

// TestDrillKill runs the clients in two worker processes (this test binary
// in worker mode), like the full-size drill does.
func TestDrillKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fleetWorkerEnv, "1")
	res := runDrill(t, DrillKill, func(c *DrillConfig) { c.Workers, c.WorkerArgv = 2, []string{exe} })
	if res.Workers != 2 {
		t.Errorf("workers = %d", res.Workers)
	}
	if _, ok := res.After[res.Target]; ok || len(res.After) != 2 {
		t.Errorf("after the kill of %s: %v", res.Target, res.After)
	}
	if res.NotConnected != 0 || res.RecoverySeconds <= 0 || res.RecoverySeconds > 30 {
		t.Errorf("not connected %d, recovery %.2fs", res.NotConnected, res.RecoverySeconds)
	}
	if res.Dropped < int64(res.Affected) {
		t.Errorf("dropped %d < affected %d", res.Dropped, res.Affected)
	}
	if res.SurvivorsMaxMean < 1 || res.SurvivorsMaxMean > 1.5 {
		t.Errorf("survivors max/mean %.3f", res.SurvivorsMaxMean)
	}
}

func TestDrillDrain(t *testing.T) {
	res := runDrill(t, DrillDrain, nil)
	if _, ok := res.After[res.Target]; ok {
		t.Errorf("drained %s still holds clients: %v", res.Target, res.After)
	}
	if res.NotConnected != 0 || res.GaveUp != 0 {
		t.Errorf("not connected %d, gave up %d", res.NotConnected, res.GaveUp)
	}
	if res.RecoverySeconds <= 0 || res.ExitSeconds < res.RecoverySeconds {
		t.Errorf("empty after %.2fs, exit after %.2fs", res.RecoverySeconds, res.ExitSeconds)
	}
}

func TestDrillAuthRestart(t *testing.T) {
	res := runDrill(t, DrillAuthRestart, func(c *DrillConfig) { c.Settle = time.Second })
	if res.Dropped != 0 || res.NotConnected != 0 {
		t.Errorf("auth restart dropped %d connections, %d not connected", res.Dropped, res.NotConnected)
	}
}

func TestDrillHAProxyKill(t *testing.T) {
	res := runDrill(t, DrillHAProxyKill, func(c *DrillConfig) { c.Settle = time.Second })
	if res.Lost != res.Clients || res.Dropped != int64(res.Clients) {
		t.Errorf("lost %d, dropped %d of %d: a dead single balancer loses every client", res.Lost, res.Dropped, res.Clients)
	}
}

func TestDrillConfigErrors(t *testing.T) {
	// Each key is the field the error must name: Drill fills nothing in.
	for field, tc := range map[string]struct {
		drill string
		mod   func(*DrillConfig)
	}{
		"Drill":          {"reboot", nil},
		"WorkerArgv":     {DrillKill, func(c *DrillConfig) { c.Clients = 30_000 }},
		"Clients":        {DrillKill, func(c *DrillConfig) { c.Clients = -1 }},
		"Rate":           {DrillKill, func(c *DrillConfig) { c.Rate = 0 }},
		"RecoverTimeout": {DrillKill, func(c *DrillConfig) { c.RecoverTimeout = 0 }},
		"Settle":         {DrillKill, func(c *DrillConfig) { c.Settle = 0 }},
		"SourceIPs":      {DrillKill, func(c *DrillConfig) { c.SourceIPs = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }},
		"BinDir":         {DrillKill, func(c *DrillConfig) { c.Env.BinDir = "" }},
		"Nodes":          {DrillKill, func(c *DrillConfig) { c.Env.Nodes = 0 }},
		"maxconn":        {DrillHAProxyKill, func(c *DrillConfig) { c.Clients, c.WorkerArgv = 12_000, []string{"x"} }},
	} {
		cfg := DefaultDrillConfig(tc.drill)
		cfg.Env.BinDir, cfg.Clients = "/nonexistent", 10
		if tc.mod != nil {
			tc.mod(&cfg)
		}
		if _, err := Drill(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	if c := DefaultDrillConfig(DrillHAProxyKill); c.Clients != 8_000 {
		t.Errorf("haproxy-kill defaults to %d clients, want 8,000 (one HAProxy's share)", c.Clients)
	}
}

func TestFleetConfigErrors(t *testing.T) {
	good := DefaultFleetConfig()
	good.AuthURL, good.Clients = "http://127.0.0.1:1", 1
	if err := good.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	// Each key is the field the error must name: StartFleet fills nothing in.
	for field, mod := range map[string]func(*FleetConfig){
		"AuthURL":      func(c *FleetConfig) { c.AuthURL = "" },
		"Clients":      func(c *FleetConfig) { c.Clients = 0 },
		"Rate":         func(c *FleetConfig) { c.Rate = 0 },
		"Concurrency":  func(c *FleetConfig) { c.Concurrency = 0 },
		"BackoffBase":  func(c *FleetConfig) { c.BackoffBase = 0 },
		"BackoffMax":   func(c *FleetConfig) { c.BackoffMax = c.BackoffBase / 2 },
		"SourceOffset": func(c *FleetConfig) { c.SourceOffset = -1 },
		"SourceIPs":    func(c *FleetConfig) { c.SourceIPs = []netip.Addr{netip.MustParseAddr("10.0.0.1")} },
	} {
		c := good
		mod(&c)
		if _, err := StartFleet(context.Background(), c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}
