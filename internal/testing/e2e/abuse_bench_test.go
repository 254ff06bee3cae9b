package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// todayUsersFile is the users-file backend's check as it was before
// concurrent first logins shared one bcrypt (commit ea4cb5c), kept here only
// as the baseline of BenchmarkReloginColdCache: every login that misses the
// cache runs bcrypt itself, and a cache entry expires a fixed TTL after the
// check that made it, however often it is used. Same bcrypt, same HMAC.
type todayUsersFile struct {
	hash []byte
	user string
	ttl  time.Duration
	key  [32]byte

	mu      sync.Mutex
	mac     [sha256.Size]byte
	expires time.Time
}

func newTodayUsersFile(user string, hash []byte, ttl time.Duration) *todayUsersFile {
	u := &todayUsersFile{user: user, hash: hash, ttl: ttl}
	if _, err := rand.Read(u.key[:]); err != nil {
		panic(err)
	}
	return u
}

func (u *todayUsersFile) macOf(pw string) [sha256.Size]byte {
	m := hmac.New(sha256.New, u.key[:])
	m.Write([]byte(pw))
	var out [sha256.Size]byte
	copy(out[:], m.Sum(nil))
	return out
}

func (u *todayUsersFile) Authenticate(_ context.Context, _ *http.Request, req wire.ConnectRequest) (string, error) {
	if req.Username != u.user {
		return "", authsvc.ErrInvalidCredentials
	}
	mac := u.macOf(req.Password)
	u.mu.Lock()
	hit := time.Now().Before(u.expires) && hmac.Equal(u.mac[:], mac[:])
	u.mu.Unlock()
	if hit {
		return u.user, nil
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(req.Password)) != nil {
		return "", authsvc.ErrInvalidCredentials
	}
	u.mu.Lock()
	u.mac, u.expires = mac, time.Now().Add(u.ttl)
	u.mu.Unlock()
	return u.user, nil
}

// BenchmarkReloginColdCache: 2,000 Managed clients of one user (as the
// bench tools run them) on 2 nodes, bcrypt cost 10 (hash-password's
// default; WSDIRECT_RELOGIN_COST overrides). The credential cache's TTL is
// 2 s and every client has been connected longer, so the cache is cold when
// the node holding the most clients (about 1,000) is killed. Reports the
// auth request time of their logins (p50/p99/max) and the time until all
// are connected again, "today" (every login runs its own bcrypt) side by
// side with "now" (concurrent logins share one bcrypt, at most one per CPU
// at a time).
func BenchmarkReloginColdCache(b *testing.B) {
	cost := 10
	if s := os.Getenv("WSDIRECT_RELOGIN_COST"); s != "" {
		cost, _ = strconv.Atoi(s)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(testcluster.Password), cost)
	if err != nil {
		b.Fatal(err)
	}
	usersPath := filepath.Join(b.TempDir(), "users")
	if err := os.WriteFile(usersPath, []byte(testcluster.User+":"+string(hash)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	const ttl = 2 * time.Second
	for _, v := range []struct {
		name  string
		creds func() authsvc.Authenticator
	}{
		{"today", func() authsvc.Authenticator { return newTodayUsersFile(testcluster.User, hash, ttl) }},
		{"now", func() authsvc.Authenticator {
			u, err := authsvc.NewUsersFile(usersPath)
			if err != nil {
				b.Fatal(err)
			}
			u.SetCacheTTL(ttl)
			return u
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				reloginAfterKill(b, v.creds(), ttl)
			}
		})
	}
}

func reloginAfterKill(b *testing.B, creds authsvc.Authenticator, ttl time.Duration) {
	const clients = 2000
	c := startCluster(b, func(o *testcluster.Options) { o.Nodes, o.Credentials = 2, creds })
	var (
		mu        sync.Mutex
		auths     []time.Duration
		recording atomic.Bool
	)
	f := startFleet(b, c.AuthURL(0), clients, 3*time.Minute, func(mc *client.ManagedConfig) {
		mc.BackoffBase, mc.BackoffMax = 0, 0 // the client's defaults
		mc.OnTiming = func(auth, _ time.Duration) {
			if recording.Load() {
				mu.Lock()
				auths = append(auths, auth)
				mu.Unlock()
			}
		}
	})
	time.Sleep(ttl + time.Second) // every cache entry has expired
	victim, most := 0, -1
	for j, n := range c.Nodes() {
		if k := n.Conns(); k > most {
			victim, most = j, k
		}
	}
	name := c.Node(victim).Name
	recording.Store(true)
	start := time.Now()
	c.KillNode(victim)
	err := probe.Poll(context.Background(), 3*time.Minute, 50*time.Millisecond, "every client back, none on the killed node", func() error {
		return probe.Check(f.connected() == clients && len(f.byNode()[name]) == 0,
			"%d of %d connected, %d on %s", f.connected(), clients, len(f.byNode()[name]), name)
	})
	took := time.Since(start)
	if err != nil {
		b.Fatalf("after %v only %d of %d clients connected", took, f.connected(), clients)
	}
	mu.Lock()
	d := append([]time.Duration(nil), auths...)
	mu.Unlock()
	sortDurations(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(d, 50)), "auth-p50-ms")
	b.ReportMetric(ms(percentile(d, 99)), "auth-p99-ms")
	b.ReportMetric(ms(percentile(d, 100)), "auth-max-ms")
	b.ReportMetric(float64(took.Milliseconds()), "reconnect-ms")
	b.Logf("killed %s holding %d of %d clients; %d logins: auth p50 %v p99 %v max %v; all back in %v",
		name, most, clients, len(d), percentile(d, 50), percentile(d, 99), percentile(d, 100), took.Round(time.Millisecond))
	f.stop()
	c.Close()
}

// BenchmarkTokenHoarding: one user asks for tokens as fast as it can (8
// concurrent loops, never connecting) while 200 other users open 3
// connections each (600 in all, 16 at a time, paced at 60/s so that the
// hoarding goes on for 10 s around them) through auth on 3 nodes of 400. Reports the other users'
// success rate and connect latency, and what the hoarder got, with the
// per-user token limit (the default, 10) side by side with no limit
// (today's behaviour).
func BenchmarkTokenHoarding(b *testing.B) {
	var lines []string
	users := []string{"mallory"}
	for i := 0; i < 200; i++ {
		users = append(users, fmt.Sprintf("user-%03d", i))
	}
	for _, u := range users {
		l, err := authsvc.HashPassword(u, "pw-"+u, bcrypt.MinCost)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, l)
	}
	usersPath := filepath.Join(b.TempDir(), "users")
	if err := os.WriteFile(usersPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name  string
		limit int
	}{{"limit=10", authsvc.DefaultMaxUserTokens}, {"no-limit(today)", 0}} {
		b.Run(v.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				hoardingRun(b, usersPath, users[1:], v.limit)
			}
		})
	}
}

func hoardingRun(b *testing.B, usersPath string, others []string, limit int) {
	uf, err := authsvc.NewUsersFile(usersPath)
	if err != nil {
		b.Fatal(err)
	}
	c := startCluster(b, func(o *testcluster.Options) {
		o.Nodes, o.Cap, o.Credentials = 3, 400, uf
		o.AuthConfig = func(_ int, ac *authsvc.Config) { ac.MaxUserTokens = limit }
	})
	url := c.AuthURL(0) + wire.ConnectPath
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// The hoarder: 8 loops, each on its own keep-alive connection.
	hoard := map[int]*atomic.Int64{}
	var hmu sync.Mutex
	var hwg sync.WaitGroup
	for w := 0; w < 8; w++ {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"username":"mallory","password":"pw-mallory"}`))
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				hmu.Lock()
				if hoard[resp.StatusCode] == nil {
					hoard[resp.StatusCode] = &atomic.Int64{}
				}
				hoard[resp.StatusCode].Add(1)
				hmu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the hoarder is at full speed

	// The others: 3 connections per user, 16 at a time, each kept.
	const perUser = 3
	var (
		mu      sync.Mutex
		ok      int
		fails   = map[string]int{}
		lat     []time.Duration
		conns   []io.Closer
		next    atomic.Int64
		wg      sync.WaitGroup
		workers = 16
	)
	total := len(others) * perUser
	opts := clientOptions(workers)
	pace := rate.NewLimiter(60, 1)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= total {
					return
				}
				u := others[k%len(others)]
				if pace.Wait(ctx) != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				conn, _, err := client.Dial(dctx, c.AuthURL(0), client.Credentials{Username: u, Password: "pw-" + u}, opts...)
				d := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil {
					fails[failKind(err)]++
				} else {
					ok++
					lat = append(lat, d)
					conns = append(conns, conn)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	hwg.Wait()
	for _, cn := range conns {
		cn.Close()
	}
	sortDurations(lat)
	rate := 100 * float64(ok) / float64(total)
	got := map[int]int64{}
	var hoarded int64
	for s, n := range hoard {
		got[s] = n.Load()
		hoarded += n.Load()
	}
	b.ReportMetric(rate, "others-success-%")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "others-p99-ms")
	b.ReportMetric(float64(got[http.StatusOK]), "hoarder-tokens")
	b.ReportMetric(float64(hoarded)/elapsed.Seconds(), "hoarder-req/s")
	b.Logf("others: %d of %d connected (%.2f%%) in %v, p50 %v p99 %v, failures %v; hoarder: %d requests (%.0f/s) by status %v",
		ok, total, rate, elapsed.Round(time.Millisecond), percentile(lat, 50), percentile(lat, 99), fails, hoarded, float64(hoarded)/elapsed.Seconds(), got)
	if limit > 0 && rate < 99 {
		b.Errorf("with the per-user limit, other users' success rate is %.2f%%, want at least 99%%", rate)
	}
	c.Close()
}

func failKind(err error) string {
	var ae *client.AuthError
	if errors.As(err, &ae) {
		return fmt.Sprintf("auth-%d-%s", ae.Status, ae.Code)
	}
	var ne *client.NodeError
	if errors.As(err, &ne) {
		return fmt.Sprintf("node-%d-%s", ne.Status, ne.Code)
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
