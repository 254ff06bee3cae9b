package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// The drills.
const (
	// DrillKill SIGKILLs the node holding the most clients and times their
	// move to the other nodes through auth.
	DrillKill = "kill"
	// DrillDrain drains the busiest node (SIGTERM) and times it to empty.
	DrillDrain = "drain"
	// DrillAuthRestart restarts auth while every client is connected and
	// counts the connections that dropped (the goal is none).
	DrillAuthRestart = "auth-restart"
	// DrillHAProxyKill SIGKILLs HAProxy in front of the nodes (mode http,
	// the article's setup) and counts the clients lost.
	DrillHAProxyKill = "haproxy-kill"
)

// Drills lists every drill.
var Drills = []string{DrillKill, DrillDrain, DrillAuthRestart, DrillHAProxyKill}

// DrillConfig describes one drill. Start from DefaultDrillConfig; Drill
// rejects invalid fields.
type DrillConfig struct {
	// Env describes the servers; Env.BinDir is required.
	Env EnvConfig
	// Drill is one of Drills.
	Drill string
	// Clients is the number of managed clients, at least 1.
	Clients int
	// Rate is the first-connect rate per second. Must be > 0.
	Rate float64
	// Workers splits the clients over this many fleets; 0 means one per
	// 8,000 clients.
	Workers int
	// WorkerArgv runs each fleet in a worker process started as this
	// command line (e.g. [".../wsdirect-bench", "drill-worker"]); empty runs
	// the fleets in this process, which one process can do up to about
	// 19,000 clients.
	WorkerArgv []string
	// ConnectTimeout bounds the wait for every client's first connect; 0
	// means twice Clients/Rate plus 30s.
	ConnectTimeout time.Duration
	// RecoverTimeout bounds the wait for the drill's outcome. Must be > 0.
	RecoverTimeout time.Duration
	// SourceIPs are the loopback addresses the clients bind, round-robin;
	// empty lets the kernel pick (127.0.0.1).
	SourceIPs []netip.Addr
	// Settle is how long auth-restart and haproxy-kill keep watching after
	// the event. Must be > 0.
	Settle time.Duration
	// Progress receives a narrative; nil discards it.
	Progress io.Writer
}

// DefaultDrillConfig returns the full-size drill of that name; the caller
// sets Env.BinDir (and WorkerArgv for more than 19,000 clients).
func DefaultDrillConfig(drill string) DrillConfig {
	c := DrillConfig{
		Env:   DefaultEnvConfig(),
		Drill: drill,
		// 30,000 clients: 10,000 per node, more than one client process
		// can hold.
		Clients: 30_000,
		// 2,000/s: 30,000 clients connect in 15 s.
		Rate: 2000,
		// Bounds a drill that went wrong.
		RecoverTimeout: 60 * time.Second,
		SourceIPs:      append([]netip.Addr(nil), DefaultFleetSourceIPs...),
		// 3 s: many gossip rounds (200 ms each) after the event.
		Settle: 3 * time.Second,
	}
	if drill == DrillHAProxyKill {
		// One HAProxy holds at most about 9,500 here.
		c.Clients = 8_000
	}
	return c
}

// validate reports the first problem with c (the servers are checked by
// StartEnv).
func (c *DrillConfig) validate() error {
	switch c.Drill {
	case DrillKill, DrillDrain, DrillAuthRestart, DrillHAProxyKill:
	default:
		return fmt.Errorf("benchcompare: unknown Drill %q (want one of %v)", c.Drill, Drills)
	}
	switch {
	case c.Clients < 1:
		return fmt.Errorf("benchcompare: Clients must be at least 1, got %d", c.Clients)
	case !(c.Rate > 0):
		return fmt.Errorf("benchcompare: Rate must be > 0, got %g", c.Rate)
	case c.Workers < 0:
		return fmt.Errorf("benchcompare: Workers must not be negative, got %d", c.Workers)
	case len(c.WorkerArgv) == 0 && c.Clients > 19_000:
		return fmt.Errorf("benchcompare: %d Clients need worker processes (one process may open 20,000 files); set WorkerArgv", c.Clients)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("benchcompare: ConnectTimeout must not be negative, got %s", c.ConnectTimeout)
	case c.RecoverTimeout <= 0:
		return fmt.Errorf("benchcompare: RecoverTimeout must be > 0, got %s", c.RecoverTimeout)
	case c.Settle <= 0:
		return fmt.Errorf("benchcompare: Settle must be > 0, got %s", c.Settle)
	}
	for _, ip := range c.SourceIPs {
		if !ip.IsLoopback() {
			return fmt.Errorf("benchcompare: SourceIPs: %s is not a loopback address", ip)
		}
	}
	return nil
}

// DrillResult is what a drill measured.
type DrillResult struct {
	Drill   string `json:"drill"`
	Clients int    `json:"clients"`
	Workers int    `json:"workers"`
	// ConnectSeconds is how long every client's first connect took.
	ConnectSeconds float64 `json:"connect_seconds"`
	// Before and After are clients per node before the event and at its
	// end.
	Before map[string]int `json:"before"`
	After  map[string]int `json:"after"`
	// Target is the node killed or drained ("haproxy", "auth-1").
	Target string `json:"target"`
	// Affected is how many clients the target held.
	Affected int `json:"affected"`
	// RecoverySeconds is, for kill, from the kill until the last affected
	// client was connected to another node; for drain, from the SIGTERM
	// until the node held no client; for auth-restart, the restart itself;
	// for haproxy-kill, until no client was connected.
	RecoverySeconds float64 `json:"recovery_seconds"`
	// ExitSeconds is, for drain, from the SIGTERM until the node exited.
	ExitSeconds float64 `json:"exit_seconds,omitempty"`
	// SurvivorsMaxMean is max/mean of After over the nodes holding clients.
	SurvivorsMaxMean float64 `json:"survivors_max_mean"`
	// Dropped counts established connections that ended during the drill.
	Dropped int64 `json:"dropped"`
	// NotConnected is how many clients were not connected at the end.
	NotConnected int `json:"not_connected"`
	// Lost is, for haproxy-kill, the clients that lost their connection
	// and had none again when the drill ended.
	Lost int `json:"lost"`
	// FailedAttempts counts connect attempts that failed during the drill
	// (and were retried), by kind; GaveUp counts clients that stopped.
	FailedAttempts map[string]int64 `json:"failed_attempts"`
	GaveUp         int              `json:"gave_up"`
}

// Drill runs one drill on a fresh cluster and returns what it measured. It
// returns an error (with the partial result) when the drill's outcome is
// not reached in time.
func Drill(ctx context.Context, cfg DrillConfig) (*DrillResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Env.validate(); err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = (cfg.Clients + 7_999) / 8_000
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 2*time.Duration(float64(cfg.Clients)/cfg.Rate*float64(time.Second)) + 30*time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	begin := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Progress, "[%6.2fs] "+format+"\n", append([]any{time.Since(begin).Seconds()}, args...)...)
	}
	path := PathDirect
	if cfg.Drill == DrillHAProxyKill {
		path = PathHAProxyHTTP
		if cfg.Clients > cfg.Env.HAProxyMaxConn {
			return nil, fmt.Errorf("benchcompare: %d clients exceed HAProxy's maxconn %d (two descriptors per connection under a 20,000-file limit)", cfg.Clients, cfg.Env.HAProxyMaxConn)
		}
	}
	// Room for every client on the survivors.
	cfg.Env.MaxConns = min(max(cfg.Env.MaxConns, cfg.Clients), 19_000)
	say("starting %s: auth and %d nodes%s", cfg.Drill, cfg.Env.Nodes, map[bool]string{true: " behind haproxy (mode http)", false: ""}[path != PathDirect])
	env, err := StartEnv(ctx, path, cfg.Env)
	if err != nil {
		return nil, err
	}
	defer env.Stop()

	res := &DrillResult{Drill: cfg.Drill, Clients: cfg.Clients, Workers: cfg.Workers}
	creds := env.Credentials()
	fc := DefaultFleetConfig()
	fc.AuthURL, fc.Username, fc.Password = env.AuthURL(), creds.Username, creds.Password
	fc.Clients, fc.Rate, fc.SourceIPs = cfg.Clients, cfg.Rate, cfg.SourceIPs
	fs, err := startFleets(ctx, fc, cfg.Workers, cfg.WorkerArgv)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fs.Stop() }()
	say("connecting %d managed clients at %.0f/s over %d fleet(s)%s", cfg.Clients, cfg.Rate, len(fs), map[bool]string{true: " in worker processes", false: " in this process"}[len(cfg.WorkerArgv) > 0])
	connectStart := time.Now()
	all := func(s FleetStatus) bool { return s.Clients == cfg.Clients && s.Connected == cfg.Clients }
	s, err := waitStatus(ctx, fs, cfg.ConnectTimeout, all)
	if err != nil {
		return res, fmt.Errorf("only %d of %d clients connected within %v (failed attempts: %v)", s.Connected, cfg.Clients, cfg.ConnectTimeout, s.FailedAttempts)
	}
	res.ConnectSeconds = time.Unix(0, s.LastConnect).Sub(connectStart).Seconds()
	res.Before = s.Nodes
	base := s
	say("all %d connected in %.2fs; per node: %s", cfg.Clients, res.ConnectSeconds, fmtCounts(res.Before))

	finish := func(s FleetStatus) {
		res.After = s.Nodes
		res.SurvivorsMaxMean = loadtest.Balance(s.Nodes)
		res.Dropped = s.Disconnects - base.Disconnects
		res.NotConnected = cfg.Clients - s.Connected
		res.GaveUp = s.GaveUp
		res.FailedAttempts = map[string]int64{}
		for k, v := range s.FailedAttempts {
			if d := v - base.FailedAttempts[k]; d > 0 {
				res.FailedAttempts[k] = d
			}
		}
	}

	switch cfg.Drill {
	case DrillKill, DrillDrain:
		victim := busiest(res.Before)
		idx := env.Cluster.NodeIndex(victim)
		if idx < 0 {
			return res, fmt.Errorf("busiest node %q is not in the cluster", victim)
		}
		res.Target, res.Affected = victim, res.Before[victim]
		at := time.Now()
		if cfg.Drill == DrillKill {
			say("SIGKILL %s, which holds %d clients", victim, res.Affected)
			if err := env.Cluster.Kill(idx); err != nil {
				return res, err
			}
			s, err = waitStatus(ctx, fs, cfg.RecoverTimeout, func(s FleetStatus) bool { return s.Nodes[victim] == 0 && all(s) })
			finish(s)
			if err != nil {
				return res, fmt.Errorf("%d clients still not connected elsewhere %v after the kill (failed attempts: %v)", res.NotConnected+s.Nodes[victim], cfg.RecoverTimeout, res.FailedAttempts)
			}
			res.RecoverySeconds = time.Unix(0, s.LastConnect).Sub(at).Seconds()
			say("all %d clients of %s reconnected elsewhere through auth %.2fs after the kill; survivors max/mean %.3f; %s",
				res.Affected, victim, res.RecoverySeconds, res.SurvivorsMaxMean, fmtCounts(res.After))
			break
		}
		say("SIGTERM (drain) %s, which holds %d clients", victim, res.Affected)
		if err := env.Cluster.Drain(idx); err != nil {
			return res, err
		}
		s, err = waitStatus(ctx, fs, cfg.RecoverTimeout, func(s FleetStatus) bool { return s.Nodes[victim] == 0 })
		if err != nil {
			finish(s)
			return res, fmt.Errorf("%s still holds %d clients %v after SIGTERM", victim, s.Nodes[victim], cfg.RecoverTimeout)
		}
		res.RecoverySeconds = time.Since(at).Seconds()
		wctx, cancel := context.WithTimeout(ctx, cfg.RecoverTimeout)
		werr := env.Cluster.Nodes[idx].Wait(wctx)
		cancel()
		if errors.Is(werr, context.DeadlineExceeded) {
			return res, fmt.Errorf("%s did not exit %v after it was empty", victim, cfg.RecoverTimeout)
		}
		res.ExitSeconds = time.Since(at).Seconds()
		s, err = waitStatus(ctx, fs, cfg.RecoverTimeout, all)
		finish(s)
		say("%s empty %.2fs after SIGTERM, exited after %.2fs; %d clients not reconnected, %d gave up; %s",
			victim, res.RecoverySeconds, res.ExitSeconds, res.NotConnected, res.GaveUp, fmtCounts(res.After))
		if err != nil {
			return res, fmt.Errorf("%d clients failed to reconnect after the drain (failed attempts: %v)", res.NotConnected, res.FailedAttempts)
		}

	case DrillAuthRestart:
		res.Target = env.Cluster.Auths[0].Name
		res.Affected = cfg.Clients
		say("restarting %s with every client connected", res.Target)
		at := time.Now()
		if err := env.Cluster.RestartAuth(ctx, 0); err != nil {
			return res, err
		}
		res.RecoverySeconds = time.Since(at).Seconds()
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		finish(fs.Status())
		say("auth back in %.2fs; %d connections dropped, %d clients not connected (%v later)", res.RecoverySeconds, res.Dropped, res.NotConnected, cfg.Settle)

	case DrillHAProxyKill:
		res.Target = "haproxy"
		res.Affected = cfg.Clients
		say("SIGKILL haproxy (pid %d), in front of all %d clients", env.HAProxy.PID(), cfg.Clients)
		at := time.Now()
		if err := env.HAProxy.Kill(); err != nil {
			return res, err
		}
		s, err = waitStatus(ctx, fs, cfg.RecoverTimeout, func(s FleetStatus) bool { return s.Connected == 0 })
		if err == nil {
			res.RecoverySeconds = time.Since(at).Seconds()
		}
		// Give the clients the time to come back, if anything could take
		// them: nothing can, a single balancer is the single point.
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		finish(fs.Status())
		res.Lost = res.NotConnected
		say("%d of %d clients lost (%d connections dropped), none back %v later; failed attempts %v",
			res.Lost, cfg.Clients, res.Dropped, cfg.Settle, res.FailedAttempts)
	}
	return res, nil
}

func busiest(counts map[string]int) string {
	name, most := "", -1
	for _, k := range sortedKeys(counts) {
		if counts[k] > most {
			name, most = k, counts[k]
		}
	}
	return name
}

func fmtCounts(m map[string]int) string {
	keys := sortedKeys(m)
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s
}

// WriteTable prints the result as aligned lines.
func (r *DrillResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "drill              %s\n", r.Drill)
	fmt.Fprintf(w, "clients            %d over %d fleet(s)\n", r.Clients, r.Workers)
	fmt.Fprintf(w, "first connects     %.2fs\n", r.ConnectSeconds)
	fmt.Fprintf(w, "before             %s\n", fmtCounts(r.Before))
	fmt.Fprintf(w, "target             %s (%d clients)\n", r.Target, r.Affected)
	switch r.Drill {
	case DrillKill:
		fmt.Fprintf(w, "all reconnected    %.2fs after the kill\n", r.RecoverySeconds)
	case DrillDrain:
		fmt.Fprintf(w, "node empty         %.2fs after SIGTERM (exited after %.2fs)\n", r.RecoverySeconds, r.ExitSeconds)
	case DrillAuthRestart:
		fmt.Fprintf(w, "auth restart       %.2fs\n", r.RecoverySeconds)
	case DrillHAProxyKill:
		fmt.Fprintf(w, "all disconnected   %.2fs after the kill\n", r.RecoverySeconds)
		fmt.Fprintf(w, "lost               %d of %d\n", r.Lost, r.Clients)
	}
	fmt.Fprintf(w, "after              %s\n", fmtCounts(r.After))
	fmt.Fprintf(w, "survivors max/mean %.3f\n", r.SurvivorsMaxMean)
	fmt.Fprintf(w, "dropped            %d\n", r.Dropped)
	fmt.Fprintf(w, "not connected      %d (gave up: %d)\n", r.NotConnected, r.GaveUp)
	fmt.Fprintf(w, "failed attempts    %v\n", r.FailedAttempts)
}
