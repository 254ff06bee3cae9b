package scalerun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// procRoot is where the proc file system is mounted; tests point it at a
// fixture directory.
var procRoot = "/proc"

// HostLimits are the machine-wide settings that bound a run of this size.
// They are read, never changed.
type HostLimits struct {
	// LocalPortRange is net.ipv4.ip_local_port_range: the ephemeral ports a
	// client may use per (source IP, destination) pair.
	LocalPortRange [2]int `json:"ip_local_port_range"`
	// Somaxconn caps every listener's accept queue; TCPMaxSynBacklog the
	// half-open queue.
	Somaxconn        int `json:"somaxconn"`
	TCPMaxSynBacklog int `json:"tcp_max_syn_backlog"`
	// TCPMem is net.ipv4.tcp_mem in pages (low, pressure, high).
	TCPMem [3]int64 `json:"tcp_mem_pages"`
	// FileMax and NrOpen are fs.file-max (system-wide open files) and
	// fs.nr_open (the highest RLIMIT_NOFILE any process may get).
	FileMax int64 `json:"file_max"`
	NrOpen  int64 `json:"nr_open"`
	// MemTotal and MemAvailable (at the start) from /proc/meminfo.
	MemTotal     int64 `json:"mem_total_bytes"`
	MemAvailable int64 `json:"mem_available_bytes"`
	// CPUs online.
	CPUs int `json:"cpus"`
}

// ReadHostLimits reads HostLimits from /proc/sys and /proc/meminfo. A
// setting that cannot be read is an error: the report must not guess.
func ReadHostLimits() (HostLimits, error) {
	var h HostLimits
	var errs []error
	ints := func(name string) []int64 {
		v, err := readSysctl(name)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	if v := ints("net/ipv4/ip_local_port_range"); len(v) == 2 {
		h.LocalPortRange = [2]int{int(v[0]), int(v[1])}
	}
	if v := ints("net/core/somaxconn"); len(v) == 1 {
		h.Somaxconn = int(v[0])
	}
	if v := ints("net/ipv4/tcp_max_syn_backlog"); len(v) == 1 {
		h.TCPMaxSynBacklog = int(v[0])
	}
	if v := ints("net/ipv4/tcp_mem"); len(v) == 3 {
		h.TCPMem = [3]int64{v[0], v[1], v[2]}
	}
	if v := ints("fs/file-max"); len(v) == 1 {
		h.FileMax = v[0]
	}
	if v := ints("fs/nr_open"); len(v) == 1 {
		h.NrOpen = v[0]
	}
	mem, err := readKeyValueKB(filepath.Join(procRoot, "meminfo"), "MemTotal", "MemAvailable")
	if err != nil {
		errs = append(errs, err)
	}
	h.MemTotal, h.MemAvailable = mem["MemTotal"], mem["MemAvailable"]
	if n, err := countCPUs(); err == nil {
		h.CPUs = n
	} else {
		errs = append(errs, err)
	}
	return h, errors.Join(errs...)
}

func readSysctl(name string) ([]int64, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, "sys", name))
	if err != nil {
		return nil, fmt.Errorf("scalerun: sysctl %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	var out []int64
	for _, f := range strings.Fields(string(data)) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("scalerun: sysctl %s: %w", name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// readKeyValueKB reads "Key:   123 kB" lines (meminfo, status) and returns
// the wanted keys in bytes. Missing keys are an error.
func readKeyValueKB(path string, keys ...string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !want[k] {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		if len(fs) > 1 && fs[1] == "kB" {
			v *= 1024
		}
		out[k] = v
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("%s: no %s line", path, k)
		}
	}
	return out, nil
}

func countCPUs() (int, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n, nil
}

// NoFile is a process's RLIMIT_NOFILE.
type NoFile struct {
	Soft int64 `json:"soft"`
	Hard int64 `json:"hard"`
}

// parseLimits extracts "Max open files" from the text of /proc/<pid>/limits.
func parseLimits(text string) (NoFile, error) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 2 {
			break
		}
		soft, err1 := parseLimit(fs[0])
		hard, err2 := parseLimit(fs[1])
		if err := errors.Join(err1, err2); err != nil {
			return NoFile{}, fmt.Errorf("limits: %q: %w", line, err)
		}
		return NoFile{Soft: soft, Hard: hard}, nil
	}
	return NoFile{}, errors.New("limits: no \"Max open files\" line")
}

// parseLimit reads one limit column; "unlimited" is -1.
func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// procNoFile reads the RLIMIT_NOFILE process pid runs with (0: this one).
func procNoFile(pid int) (NoFile, error) {
	data, err := os.ReadFile(filepath.Join(procDir(pid), "limits"))
	if err != nil {
		return NoFile{}, err
	}
	return parseLimits(string(data))
}

// procFDs counts the open file descriptors of process pid.
func procFDs(pid int) (int, error) {
	f, err := os.Open(filepath.Join(procDir(pid), "fd"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(4096)
		n += len(names)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if pid == 0 {
		n-- // the directory we are reading
	}
	return n, nil
}

func procDir(pid int) string {
	if pid == 0 {
		return filepath.Join(procRoot, "self")
	}
	return filepath.Join(procRoot, strconv.Itoa(pid))
}

// childPIDs lists the processes whose parent is ppid. Workers are started
// by loadtest.RunWorkers, which does not expose them; this is how the run
// finds them to read their limits, descriptors and memory.
func childPIDs(ppid int) ([]int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		if p, err := parseStatPPID(string(data)); err == nil && p == ppid {
			out = append(out, pid)
		}
	}
	return out, nil
}

// parseStatPPID reads the parent pid (field 4) from /proc/<pid>/stat.
func parseStatPPID(stat string) (int, error) {
	fs, err := localcluster.ProcStatFields(stat)
	if err != nil {
		return 0, err
	}
	if len(fs) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.Atoi(fs[1]) // fs[0] is the state
}

// NetCounters are the kernel counters that show whether a host limit was
// hit during the run.
type NetCounters struct {
	// ListenOverflows and ListenDrops (TcpExt): connections lost because an
	// accept queue (bounded by somaxconn) was full.
	ListenOverflows int64 `json:"listen_overflows"`
	ListenDrops     int64 `json:"listen_drops"`
	// TCPInUse, TCPTimeWait and TCPMemPages from /proc/net/sockstat (the
	// pages count is what tcp_mem limits).
	TCPInUse    int64 `json:"tcp_inuse"`
	TCPTimeWait int64 `json:"tcp_tw"`
	TCPMemPages int64 `json:"tcp_mem_pages"`
	// OpenFiles is the first field of fs.file-nr: open files system wide
	// (what fs.file-max limits).
	OpenFiles int64 `json:"open_files"`
	// MemAvailable from /proc/meminfo.
	MemAvailable int64 `json:"mem_available_bytes"`
}

// ReadNetCounters reads NetCounters.
func ReadNetCounters() (NetCounters, error) {
	var c NetCounters
	var errs []error
	if data, err := os.ReadFile(filepath.Join(procRoot, "net", "netstat")); err != nil {
		errs = append(errs, err)
	} else if m, err := parseNetstat(string(data), "TcpExt"); err != nil {
		errs = append(errs, err)
	} else {
		c.ListenOverflows, c.ListenDrops = m["ListenOverflows"], m["ListenDrops"]
	}
	if data, err := os.ReadFile(filepath.Join(procRoot, "net", "sockstat")); err != nil {
		errs = append(errs, err)
	} else if m, err := parseSockstatTCP(string(data)); err != nil {
		errs = append(errs, err)
	} else {
		c.TCPInUse, c.TCPTimeWait, c.TCPMemPages = m["inuse"], m["tw"], m["mem"]
	}
	if v, err := readSysctl("fs/file-nr"); err != nil {
		errs = append(errs, err)
	} else if len(v) > 0 {
		c.OpenFiles = v[0]
	}
	if m, err := readKeyValueKB(filepath.Join(procRoot, "meminfo"), "MemAvailable"); err != nil {
		errs = append(errs, err)
	} else {
		c.MemAvailable = m["MemAvailable"]
	}
	return c, errors.Join(errs...)
}

// parseNetstat reads one section of /proc/net/netstat (or /proc/net/snmp):
// a header line "Prefix: Name1 Name2 ..." followed by "Prefix: v1 v2 ...".
func parseNetstat(text, prefix string) (map[string]int64, error) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, ok1 := strings.CutPrefix(lines[i], prefix+":")
		values, ok2 := strings.CutPrefix(lines[i+1], prefix+":")
		if !ok1 || !ok2 {
			continue
		}
		n, v := strings.Fields(names), strings.Fields(values)
		if len(n) != len(v) {
			return nil, fmt.Errorf("netstat %s: %d names but %d values", prefix, len(n), len(v))
		}
		out := make(map[string]int64, len(n))
		for j := range n {
			x, err := strconv.ParseInt(v[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("netstat %s %s: %w", prefix, n[j], err)
			}
			out[n[j]] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("netstat: no %s section", prefix)
}

// parseSockstatTCP reads the "TCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1"
// line of /proc/net/sockstat.
func parseSockstatTCP(text string) (map[string]int64, error) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs)%2 != 0 {
			return nil, fmt.Errorf("sockstat: odd TCP line %q", line)
		}
		out := map[string]int64{}
		for i := 0; i < len(fs); i += 2 {
			v, err := strconv.ParseInt(fs[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("sockstat %s: %w", fs[i], err)
			}
			out[fs[i]] = v
		}
		return out, nil
	}
	return nil, errors.New("sockstat: no TCP line")
}
