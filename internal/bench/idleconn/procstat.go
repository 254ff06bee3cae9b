package idleconn

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// SlabCaches are the /proc/slabinfo caches a TCP socket takes: the socket
// itself (TCP), its inode (sock_inode_cache), its open file (filp), its
// dentry, and the epoll item and wait-queue entry of the poller watching
// it. Both ends of a loopback connection are on this machine, so each
// connection takes them twice (the client's ends are Go too, on epoll).
var SlabCaches = []string{"TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "eventpoll_pwq"}

// Kernel is a snapshot of the kernel's slab memory, or a growth of it.
type Kernel struct {
	// Slab is /proc/meminfo's Slab in bytes.
	Slab int64 `json:"slab_bytes"`
	// Caches is active_objs × objsize of each of SlabCaches, in bytes; nil
	// when /proc/slabinfo is not readable (it needs root). Objects in use,
	// not slabs held: a cache gives back its slab pages lazily, so the
	// pages of the sockets a previous server closed would still be
	// returned while the next one is measured.
	Caches map[string]int64 `json:"caches,omitempty"`
}

func readKernel() (Kernel, error) {
	var k Kernel
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return k, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && fs[0] == "Slab:" {
			kb, err := strconv.ParseInt(fs[1], 10, 64)
			if err != nil {
				return k, fmt.Errorf("/proc/meminfo: %w", err)
			}
			k.Slab = kb << 10
		}
	}
	if k.Slab == 0 {
		return k, fmt.Errorf("/proc/meminfo: no Slab line")
	}
	data, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return k, nil // not root: the total alone
	}
	want := map[string]bool{}
	for _, c := range SlabCaches {
		want[c] = true
	}
	k.Caches = map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		// name active_objs num_objs objsize objperslab pagesperslab : ...
		fs := strings.Fields(line)
		if len(fs) < 4 || !want[fs[0]] {
			continue
		}
		n, err1 := strconv.ParseInt(fs[1], 10, 64)
		size, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil {
			return k, fmt.Errorf("/proc/slabinfo: bad line %q", line)
		}
		k.Caches[fs[0]] = n * size
	}
	return k, nil
}

// add returns k plus the growth from before to after (a running sum of
// growth over several windows).
func (k Kernel) add(after, before Kernel) Kernel {
	out := Kernel{Slab: k.Slab + after.Slab - before.Slab}
	if after.Caches != nil && before.Caches != nil {
		out.Caches = map[string]int64{}
		for name, v := range after.Caches {
			out.Caches[name] = k.Caches[name] + v - before.Caches[name]
		}
	}
	return out
}

// perConn is the growth k holds, per connection, in bytes.
func (k Kernel) perConn(conns int) KernelPerConn {
	out := KernelPerConn{Slab: float64(k.Slab) / float64(conns)}
	if k.Caches != nil {
		out.Caches = map[string]float64{}
		for name, v := range k.Caches {
			out.Caches[name] = float64(v) / float64(conns)
			out.CachesSum += out.Caches[name]
		}
	}
	return out
}

// KernelPerConn is kernel memory growth per connection, both ends of it.
type KernelPerConn struct {
	// Slab is /proc/meminfo's (every cache, slab pages held).
	Slab float64 `json:"slab_bytes"`
	// Caches are SlabCaches' objects in use, and CachesSum their sum.
	Caches    map[string]float64 `json:"caches,omitempty"`
	CachesSum float64            `json:"caches_sum_bytes,omitempty"`
}

// Floor is the kernel's memory per connection as reported: the socket
// caches' objects in use where /proc/slabinfo is readable, else Slab.
func (k KernelPerConn) Floor() float64 {
	if k.Caches != nil {
		return k.CachesSum
	}
	return k.Slab
}

func processRSS(pid int) (int64, error) { return localcluster.ProcRSS(pid) }

func processCPU(pid int) (time.Duration, error) { return compare.ReadProcessCPU(pid) }

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	fs := strings.Fields(string(data))
	if len(fs) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(fs[0], 64)
	if err != nil {
		return -1
	}
	return v
}
