package compare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// userHZ is the unit of /proc/stat: USER_HZ is 100 on every Linux ABI Go
// supports.
const userHZ = 100

// ReadSystemCPU returns the CPU time the whole machine has spent busy (user,
// nice, system, irq, softirq, steal; not idle or iowait) since boot, summed
// over all CPUs, from the "cpu" line of /proc/stat.
func ReadSystemCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 || fs[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]
		var busy int64
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			v, err := strconv.ParseInt(fs[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: %w", err)
			}
			busy += v
		}
		return time.Duration(busy) * time.Second / userHZ, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/stat: no cpu line")
}

// ReadProcessCPU returns the user plus system CPU time process pid has
// used, from fields 14 and 15 of /proc/<pid>/stat.
func ReadProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	fs, err := localcluster.ProcStatFields(string(data))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	// fs[0] is field 3 (state), so utime (14) and stime (15) are fs[11], fs[12].
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short line", pid)
	}
	var ticks int64
	for _, f := range fs[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

type cpuSample struct {
	at   time.Time
	busy time.Duration
	// procs[k] is the CPU time of the k-th watched process, or -1 if it
	// could not be read then (exited, or not there yet).
	procs []time.Duration
}

// cpuSampler records system CPU every interval, so that the CPU spent in a
// window known only afterwards (a run's message phase, which starts when the
// last connection is up) can be read back.
type cpuSampler struct {
	pids    []int
	mu      sync.Mutex
	samples []cpuSample
	stop    context.CancelFunc
	done    chan struct{}
}

// startCPUSampler samples the whole machine and, summed, the processes
// pids (the servers: their CPU is what the paths differ in, while the
// machine's total also holds the clients and anything else running).
func startCPUSampler(interval time.Duration, pids ...int) (*cpuSampler, error) {
	s := &cpuSampler{pids: pids, done: make(chan struct{})}
	if err := s.sample(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				_ = s.sample()
				return
			case <-t.C:
				_ = s.sample()
			}
		}
	}()
	return s, nil
}

func (s *cpuSampler) sample() error {
	busy, err := ReadSystemCPU()
	if err != nil {
		return err
	}
	procs := make([]time.Duration, len(s.pids))
	for k, pid := range s.pids {
		procs[k] = -1
		if c, err := ReadProcessCPU(pid); err == nil {
			procs[k] = c
		}
	}
	s.mu.Lock()
	s.samples = append(s.samples, cpuSample{at: time.Now(), busy: busy, procs: procs})
	s.mu.Unlock()
	return nil
}

// Stop takes a last sample and stops sampling.
func (s *cpuSampler) Stop() {
	s.stop()
	<-s.done
}

// Between returns the machine's busy CPU time and each watched process's
// CPU time (in the order of the pids given to startCPUSampler) between the
// samples nearest to from and to (the first sample at or after from, the
// last at or before to), and the wall time those samples span. A window
// too short to hold two samples (a small run's connect phase on an idle
// machine) is read between the samples around it instead: the last at or
// before from and the first at or after to.
func (s *cpuSampler) Between(from, to time.Time) (cpu time.Duration, each []time.Duration, wall time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.samples), func(i int) bool { return !s.samples[i].at.Before(from) })
	j := sort.Search(len(s.samples), func(i int) bool { return s.samples[i].at.After(to) }) - 1
	if i >= len(s.samples) || j < 0 || j <= i {
		i = sort.Search(len(s.samples), func(i int) bool { return s.samples[i].at.After(from) }) - 1
		j = sort.Search(len(s.samples), func(i int) bool { return !s.samples[i].at.Before(to) })
		if i < 0 || j >= len(s.samples) || j <= i {
			return 0, nil, 0, fmt.Errorf("benchcompare: no CPU samples around %s..%s", from.Format(time.StampMilli), to.Format(time.StampMilli))
		}
	}
	a, b := s.samples[i], s.samples[j]
	// Per process, and only where both ends were read: a process missing
	// from the first sample would otherwise add all its CPU since start.
	each = make([]time.Duration, len(s.pids))
	for k := range s.pids {
		if a.procs[k] >= 0 && b.procs[k] >= 0 {
			each[k] = b.procs[k] - a.procs[k]
		}
	}
	return b.busy - a.busy, each, b.at.Sub(a.at), nil
}
