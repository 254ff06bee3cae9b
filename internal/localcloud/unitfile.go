package localcloud

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unitDirs are the directories systemd loads unit files from, most important first (inside
// the instance's root).
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// Defaults of systemd's manager (systemd-system.conf(5)).
const (
	defaultTimeoutStop        = 90 * time.Second
	defaultRestartDelay       = 100 * time.Millisecond
	defaultStartLimitInterval = 10 * time.Second
	defaultStartLimitBurst    = 5
)

// unitSpec is what the local cloud takes from a service unit and its drop-ins.
type unitSpec struct {
	Name             string
	Description      string
	Type             string   // simple, exec or oneshot
	ExecStart        []string // raw command lines (one, except for oneshot)
	RemainAfterExit  bool
	User, Group      string
	Environment      []string // KEY=VALUE, in order
	EnvironmentFiles []string // paths; a leading '-' means optional
	WorkingDirectory string
	// StateDirectory= names directories under /var/lib that systemd creates
	// (mode StateDirectoryMode=, default 0755) before each start.
	StateDirectories   []string
	StateDirectoryMode os.FileMode
	Restart            string
	RestartDelay       time.Duration
	StopTimeout        time.Duration
	KillSignal         syscall.Signal
	KillMode           string
	LimitNOFILE        uint64 // 0 = not set
	StartLimitInterval time.Duration
	StartLimitBurst    int
	WantedBy           []string
	// Warnings are what systemd would log while loading (unknown keys), plus the directives
	// the local cloud accepts without enforcing (sandboxing).
	Warnings []string
}

// notEnforced are directives the local cloud accepts but cannot carry out for processes that
// run as the local cloud's own user on the host (listed in the package comment).
var notEnforced = map[string]bool{
	"NoNewPrivileges": true, "ProtectSystem": true, "ProtectHome": true, "PrivateTmp": true,
	"PrivateDevices": true, "ProtectKernelTunables": true, "ProtectKernelModules": true,
	"ProtectControlGroups": true, "RestrictNamespaces": true, "RestrictSUIDSGID": true,
	"LockPersonality": true, "MemoryDenyWriteExecute": true, "RestrictRealtime": true,
	"ProtectClock": true, "ProtectHostname": true, "ProtectKernelLogs": true,
	"CapabilityBoundingSet": true, "AmbientCapabilities": true, "SystemCallFilter": true,
	"SystemCallArchitectures": true, "ReadWritePaths": true, "ReadOnlyPaths": true,
	"StandardOutput": true, "StandardError": true, "SyslogIdentifier": true, "UMask": true,
	"Nice": true, "OOMScoreAdjust": true, "TasksMax": true, "MemoryMax": true, "CPUQuota": true,
}

// unsupported are directives whose effect the local cloud does not carry out and that a unit
// cannot do without; a unit using them fails to start with a clear message instead of
// running differently from EC2.
var unsupported = map[string]bool{
	"ExecStartPre": true, "ExecStartPost": true, "ExecStop": true, "ExecStopPost": true,
	"ExecReload": true, "ExecCondition": true, "PIDFile": true, "BusName": true,
	"RootDirectory": true, "RootImage": true, "DynamicUser": true, "Sockets": true,
	"WatchdogSec": true, "NotifyAccess": true,
}

// loadUnit reads a service unit and its drop-ins from the instance root.
func loadUnit(root, name string) (*unitSpec, error) {
	var main string
	for _, d := range unitDirs {
		p := filepath.Join(root, d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			main = p
			break
		}
	}
	if main == "" {
		return nil, fmt.Errorf("unit %s not found", name)
	}
	files := []string{main}
	for i := len(unitDirs) - 1; i >= 0; i-- {
		matches, _ := filepath.Glob(filepath.Join(root, unitDirs[i], name+".d", "*.conf"))
		sort.Strings(matches)
		files = append(files, matches...)
	}
	spec := &unitSpec{
		Name: name, Type: "simple", Restart: "no", RestartDelay: defaultRestartDelay,
		StopTimeout: defaultTimeoutStop, KillSignal: syscall.SIGTERM, KillMode: "control-group",
		StartLimitInterval: defaultStartLimitInterval, StartLimitBurst: defaultStartLimitBurst,
		StateDirectoryMode: 0o755, // systemd's default
	}
	for _, f := range files {
		entries, err := parseUnitFile(f)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := spec.apply(e); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", strings.TrimPrefix(f, root), e.line, err)
			}
		}
	}
	switch {
	case len(spec.ExecStart) == 0:
		return nil, fmt.Errorf("%s lacks an ExecStart= setting; refusing it", name)
	case len(spec.ExecStart) > 1 && spec.Type != "oneshot":
		return nil, fmt.Errorf("%s has more than one ExecStart= setting, which only Type=oneshot services may have; refusing it", name)
	}
	return spec, nil
}

type unitEntry struct {
	section, key, value string
	line                int
}

// parseUnitFile reads systemd's ini format: [Section] headers, Key=Value lines, '#' and ';'
// comments, and lines continued with a trailing backslash.
func parseUnitFile(path string) ([]unitEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []unitEntry
	section, pending, start := "", "", 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if pending == "" {
			start = n
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
				continue
			}
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line = strings.TrimSpace(pending + line)
		pending = ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: invalid section header %q", path, start, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: missing '=' in %q", path, start, line)
		}
		if section == "" {
			return nil, fmt.Errorf("%s:%d: assignment outside of a section", path, start)
		}
		out = append(out, unitEntry{section: section, key: strings.TrimSpace(k), value: strings.TrimSpace(v), line: start})
	}
	return out, sc.Err()
}

func (s *unitSpec) apply(e unitEntry) error {
	warn := func(format string, args ...any) { s.Warnings = append(s.Warnings, fmt.Sprintf(format, args...)) }
	switch e.section {
	case "Unit":
		switch e.key {
		case "Description":
			s.Description = e.value
		case "Documentation", "Wants", "After", "Before", "Requires", "Requisite", "BindsTo", "PartOf", "Conflicts",
			"ConditionPathExists", "AssertPathExists", "DefaultDependencies":
			// Ordering and dependencies: the local cloud starts units when asked; the network
			// is up from the start.
		case "StartLimitIntervalSec":
			d, err := parseTimespan(e.value)
			if err != nil {
				return err
			}
			s.StartLimitInterval = d
		case "StartLimitBurst":
			n, err := strconv.Atoi(e.value)
			if err != nil || n < 0 {
				return fmt.Errorf("invalid StartLimitBurst %q", e.value)
			}
			s.StartLimitBurst = n
		default:
			warn("Unknown key name '%s' in section 'Unit', ignoring.", e.key)
		}
	case "Service":
		return s.applyService(e, warn)
	case "Install":
		switch e.key {
		case "WantedBy", "RequiredBy":
			s.WantedBy = append(s.WantedBy, strings.Fields(e.value)...)
		case "Alias", "Also", "DefaultInstance":
		default:
			warn("Unknown key name '%s' in section 'Install', ignoring.", e.key)
		}
	default:
		warn("Unknown section '%s'. Ignoring.", e.section)
	}
	return nil
}

func (s *unitSpec) applyService(e unitEntry, warn func(string, ...any)) error {
	v := e.value
	switch e.key {
	case "Type":
		switch v {
		case "simple", "exec", "oneshot":
			s.Type = v
		default:
			return fmt.Errorf("type %s is not supported by the local cloud (simple, exec and oneshot are)", v)
		}
	case "ExecStart":
		if v == "" {
			s.ExecStart = nil // an empty assignment resets the list (drop-ins use this)
		} else {
			s.ExecStart = append(s.ExecStart, v)
		}
	case "RemainAfterExit":
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		s.RemainAfterExit = b
	case "User":
		s.User = v
	case "Group":
		s.Group = v
	case "Environment":
		if v == "" {
			s.Environment = nil
			return nil
		}
		words, err := splitWords(v)
		if err != nil {
			return fmt.Errorf("environment %s: %w", v, err)
		}
		for _, w := range words {
			if !strings.Contains(w, "=") {
				return fmt.Errorf("invalid environment assignment %q", w)
			}
			s.Environment = append(s.Environment, w)
		}
	case "EnvironmentFile":
		if v == "" {
			s.EnvironmentFiles = nil
		} else {
			s.EnvironmentFiles = append(s.EnvironmentFiles, v)
		}
	case "WorkingDirectory":
		s.WorkingDirectory = v
	case "StateDirectory":
		if v == "" {
			s.StateDirectories = nil
			break
		}
		for _, d := range strings.Fields(v) {
			if d = strings.Trim(d, "/"); d == "" || strings.Contains("/"+d+"/", "/../") {
				return fmt.Errorf("invalid StateDirectory=%s", v)
			}
			s.StateDirectories = append(s.StateDirectories, d)
		}
	case "StateDirectoryMode":
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("invalid StateDirectoryMode=%s", v)
		}
		s.StateDirectoryMode = os.FileMode(m)
	case "Restart":
		switch v {
		case "no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog":
			s.Restart = v
		default:
			return fmt.Errorf("invalid Restart=%s", v)
		}
	case "RestartSec":
		d, err := parseTimespan(v)
		if err != nil {
			return err
		}
		s.RestartDelay = d
	case "TimeoutStopSec", "TimeoutSec":
		d, err := parseTimespan(v)
		if err != nil {
			return err
		}
		s.StopTimeout = d
	case "TimeoutStartSec":
	case "KillSignal":
		sig, ok := signalByName(v)
		if !ok {
			return fmt.Errorf("invalid KillSignal=%s", v)
		}
		s.KillSignal = sig
	case "KillMode":
		switch v {
		case "control-group", "mixed", "process":
			s.KillMode = v
		default:
			return fmt.Errorf("kill mode %s is not supported by the local cloud", v)
		}
	case "LimitNOFILE":
		n, err := parseLimit(v)
		if err != nil {
			return err
		}
		s.LimitNOFILE = n
	case "StartLimitIntervalSec", "StartLimitInterval":
		d, err := parseTimespan(v)
		if err != nil {
			return err
		}
		s.StartLimitInterval = d
	case "StartLimitBurst":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid StartLimitBurst %q", v)
		}
		s.StartLimitBurst = n
	default:
		switch {
		case unsupported[e.key]:
			return fmt.Errorf("%s= is not supported by the local cloud", e.key)
		case notEnforced[e.key]:
			warn("%s=%s is accepted but not enforced by the local cloud.", e.key, v)
		default:
			warn("Unknown key name '%s' in section 'Service', ignoring.", e.key)
		}
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", v)
}

// parseTimespan parses systemd time spans: "90", "2s", "1min 30s", "500ms", "infinity".
func parseTimespan(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "infinity" {
		return time.Duration(math.MaxInt64), nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	units := []struct {
		suffix string
		d      time.Duration
	}{
		{"usec", time.Microsecond}, {"us", time.Microsecond}, {"msec", time.Millisecond}, {"ms", time.Millisecond},
		{"seconds", time.Second}, {"second", time.Second}, {"sec", time.Second}, {"s", time.Second},
		{"minutes", time.Minute}, {"minute", time.Minute}, {"min", time.Minute}, {"m", time.Minute},
		{"hours", time.Hour}, {"hour", time.Hour}, {"hr", time.Hour}, {"h", time.Hour},
		{"days", 24 * time.Hour}, {"day", 24 * time.Hour}, {"d", 24 * time.Hour},
	}
	var total time.Duration
	rest := strings.ReplaceAll(v, " ", "")
	if rest == "" {
		return 0, fmt.Errorf("invalid time span %q", v)
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
		rest = rest[i:]
		matched := false
		for _, u := range units {
			if strings.HasPrefix(rest, u.suffix) {
				total += time.Duration(n * float64(u.d))
				rest = rest[len(u.suffix):]
				matched = true
				break
			}
		}
		if !matched {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
	}
	return total, nil
}

// parseLimit parses a resource limit: "N", "soft:hard" (the soft value is used) or
// "infinity".
func parseLimit(v string) (uint64, error) {
	soft, _, _ := strings.Cut(v, ":")
	if soft == "infinity" {
		return math.MaxUint64, nil
	}
	n, err := strconv.ParseUint(soft, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid resource limit %q", v)
	}
	return n, nil
}

func signalByName(v string) (syscall.Signal, bool) {
	names := map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGHUP": syscall.SIGHUP,
		"SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	}
	if !strings.HasPrefix(v, "SIG") {
		v = "SIG" + v
	}
	s, ok := names[v]
	return s, ok
}

// splitWords splits a command line or an Environment= value the way systemd does: words are
// separated by whitespace; double and single quotes group (and are removed); a backslash
// escapes the next character, with the C escapes \n \t \r \a \b \f \v \\ \" \' \s and \xHH.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			r, n, err := cEscape(s[i:])
			if err != nil {
				return nil, err
			}
			cur.WriteString(r)
			i += n - 1
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quotes in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// cEscape decodes the escape at the start of s (after the backslash) and returns the text and
// how many bytes of s it used.
func cEscape(s string) (string, int, error) {
	switch s[0] {
	case 'n':
		return "\n", 1, nil
	case 't':
		return "\t", 1, nil
	case 'r':
		return "\r", 1, nil
	case 'a':
		return "\a", 1, nil
	case 'b':
		return "\b", 1, nil
	case 'f':
		return "\f", 1, nil
	case 'v':
		return "\v", 1, nil
	case 's':
		return " ", 1, nil
	case '\\', '"', '\'', ';', '$', '%', ' ':
		return string(s[0]), 1, nil
	case 'x':
		if len(s) < 3 {
			return "", 0, errors.New("short \\x escape")
		}
		b, err := strconv.ParseUint(s[1:3], 16, 8)
		if err != nil {
			return "", 0, fmt.Errorf("bad \\x escape %q", s[:3])
		}
		return string([]byte{byte(b)}), 3, nil
	}
	return "", 0, fmt.Errorf("unknown escape \\%c", s[0])
}
