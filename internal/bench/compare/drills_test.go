package compare

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"testing"
	"time"
)

// The drills at CI size: 300 managed clients each, on the real binaries.

func runDrill(t *testing.T, cfg DrillConfig) *DrillResult {
	t.Helper()
	cfg.Env = servers(t)
	cfg.Progress = testWriter{t}
	if cfg.Clients == 0 {
		cfg.Clients = 300
	}
	cfg.Rate = 1000
	cfg.RecoverTimeout = 30 * time.Second
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
	res := runDrill(t, DrillConfig{Drill: DrillKill, Workers: 2, WorkerArgv: []string{exe}})
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
	res := runDrill(t, DrillConfig{Drill: DrillDrain})
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
	res := runDrill(t, DrillConfig{Drill: DrillAuthRestart, Settle: time.Second})
	if res.Dropped != 0 || res.NotConnected != 0 {
		t.Errorf("auth restart dropped %d connections, %d not connected", res.Dropped, res.NotConnected)
	}
}

func TestDrillHAProxyKill(t *testing.T) {
	res := runDrill(t, DrillConfig{Drill: DrillHAProxyKill, Settle: time.Second})
	if res.Lost != res.Clients || res.Dropped != int64(res.Clients) {
		t.Errorf("lost %d, dropped %d of %d: a dead single balancer loses every client", res.Lost, res.Dropped, res.Clients)
	}
}

func TestDrillConfigErrors(t *testing.T) {
	for name, cfg := range map[string]DrillConfig{
		"unknown":          {Drill: "reboot"},
		"too many in-proc": {Drill: DrillKill, Clients: 30_000},
		"negative clients": {Drill: DrillKill, Clients: -1},
		"non-loopback ips": {Drill: DrillKill, Clients: 10, SourceIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Env: EnvConfig{BinDir: "/nonexistent"}},
		"haproxy too many": {Drill: DrillHAProxyKill, Clients: 12_000, WorkerArgv: []string{"x"}, Env: EnvConfig{BinDir: "/nonexistent"}},
	} {
		if _, err := Drill(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
