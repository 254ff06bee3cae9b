package authsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// workCounter wraps a UsersFile's bcrypt compare and adds up the rounds it
// runs (2^cost per call), so tests compare the work done, which no load on
// the machine can change.
type workCounter struct {
	calls  atomic.Int64
	rounds atomic.Int64
	// gate, when set, blocks every compare until it is closed.
	gate chan struct{}
}

func countWork(u *UsersFile) *workCounter {
	w := &workCounter{}
	next := u.compare
	u.compare = func(hash, pw []byte) error {
		if w.gate != nil {
			<-w.gate
		}
		c, err := bcrypt.Cost(hash)
		if err != nil {
			panic(err)
		}
		w.calls.Add(1)
		w.rounds.Add(1 << c)
		return next(hash, pw)
	}
	return w
}

func (w *workCounter) reset() { w.calls.Store(0); w.rounds.Store(0) }

func usersAt(t *testing.T, cost int, userPass ...string) *UsersFile {
	t.Helper()
	var lines []string
	for i := 0; i < len(userPass); i += 2 {
		l, err := HashPassword(userPass[i], userPass[i+1], cost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	u, err := NewUsersFile(writeUsers(t, lines...))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func login(u *UsersFile, ctx context.Context, user, pass string) error {
	_, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: user, Password: pass})
	return err
}

// TestTokenHoarding: one user asking for tokens as fast as it can, using
// none, gets MaxUserTokens and then 429 too_many_tokens, while another user
// still gets a node; the hoarder's tokens stop counting once the node's
// count is heard after them.
func TestTokenHoarding(t *testing.T) {
	creds := usersAt(t, bcrypt.MinCost, "alice", "s3cret", "bob", "hunter22", "mallory", "hoard")
	ts := newTestServer(t, func(c *Config) {
		c.Credentials = creds
		c.MaxUserTokens = 10
		c.LoginRate, c.LoginBurst = 1, 10
	})
	one := member("node-a", 0, 100)
	ts.view.set(one)
	hoard := `{"username":"mallory","password":"hoard"}`
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 150; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, data := ts.connect(t, nil, hoard, nil)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests && (errCode(t, data) != ResultTooManyTokens || resp.Header.Get("Retry-After") == "") {
				t.Errorf("429 without too_many_tokens and Retry-After: %s %v", data, resp.Header)
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != 10 || statuses[http.StatusTooManyRequests] != 140 {
		t.Fatalf("hoarder: %v, want 10 tokens and 140 refusals", statuses)
	}
	for i := 0; i < 5; i++ {
		for _, other := range []string{goodLogin, `{"username":"bob","password":"hunter22"}`} {
			if resp, data := ts.connect(t, nil, other, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("another user after the hoarding: %d %s", resp.StatusCode, data)
			}
		}
	}
	// The node's count is heard after the settle time: the hoarder's
	// tokens are inside it or never will be, so they no longer count.
	one.UpdatedAt = time.Now().Add(2 * DefaultPendingSettle)
	ts.view.set(one)
	if resp, data := ts.connect(t, nil, hoard, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("hoarder after its tokens retired: %d %s", resp.StatusCode, data)
	}
}

// TestConcurrentBruteForce: 50 wrong passwords from one address at once run
// at most the limiter's burst of bcrypts; the rest are refused with 429
// before any bcrypt, and the address is then locked out.
func TestConcurrentBruteForce(t *testing.T) {
	const burst = 5
	creds := usersAt(t, bcrypt.MinCost, "alice", "s3cret")
	work := countWork(creds)
	ts := newTestServer(t, func(c *Config) { c.Credentials = creds; c.LoginBurst = burst })
	from := clientFrom("127.0.0.7")
	// Hold every bcrypt that starts until all the guesses had time to
	// arrive: a bcrypt at a real cost (tens of ms) is what lets them all
	// pass a check at entry that charges only afterwards.
	work.gate = make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { close(work.gate) })
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Distinct guesses: identical ones would share one check anyway.
			resp, _ := ts.connect(t, from, fmt.Sprintf(`{"username":"alice","password":"guess-%d"}`, i), nil)
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if n := work.calls.Load(); n > burst {
		t.Errorf("50 concurrent wrong passwords ran %d bcrypts, want at most the burst %d", n, burst)
	}
	if statuses[http.StatusUnauthorized] > burst || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 50 {
		t.Errorf("statuses %v, want at most %d 401 and the rest 429", statuses, burst)
	}
	calls := work.calls.Load()
	if resp, _ := ts.connect(t, from, goodLogin, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right password from the locked-out address: %d", resp.StatusCode)
	}
	if work.calls.Load() != calls {
		t.Error("a locked-out address ran bcrypt")
	}
	// Successes give their unit back: a burst of right passwords from one
	// address never locks it, whatever the number.
	work.reset()
	ts2 := newTestServer(t, func(c *Config) { c.Credentials = usersAt(t, bcrypt.MinCost, "alice", "s3cret"); c.LoginBurst = burst })
	other := clientFrom("127.0.0.8")
	for i := 0; i < 3*burst; i++ {
		ts2.Server.conf.Credentials.(*UsersFile).cache = newCredCache(0, 0, 1) // every login runs bcrypt
		if resp, data := ts2.connect(t, other, goodLogin, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("good login %d: %d %s", i, resp.StatusCode, data)
		}
	}
}

// TestSharedFirstLogin: concurrent first logins of one user with one
// password run one bcrypt between them, and all succeed.
func TestSharedFirstLogin(t *testing.T) {
	u := usersAt(t, 6, "alice", "s3cret")
	work := countWork(u)
	work.gate = make(chan struct{}) // hold the first check until all have asked
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := login(u, context.Background(), "alice", "s3cret"); err != nil {
				failed.Add(1)
			}
		}()
	}
	// Give every goroutine time to join the flight; a late one finds the
	// cache filled instead, which costs no bcrypt either.
	time.Sleep(200 * time.Millisecond)
	close(work.gate)
	wg.Wait()
	if failed.Load() != 0 || work.calls.Load() != 1 {
		t.Fatalf("64 concurrent first logins: %d failed, %d bcrypt runs; want 0 and 1", failed.Load(), work.calls.Load())
	}
	// A wrong password never shares the right one's result.
	if err := login(u, context.Background(), "alice", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestAbandonedLoginStopsWaiting: a request whose client gave up leaves
// without waiting for bcrypt, and a check that has not started by then never
// starts.
func TestAbandonedLoginStopsWaiting(t *testing.T) {
	u := usersAt(t, bcrypt.MinCost, "alice", "s3cret", "bob", "hunter22")
	work := countWork(u)

	// Already abandoned: no bcrypt at all.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := login(u, gone, "alice", "s3cret"); !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned login: %v, want context.Canceled", err)
	}
	time.Sleep(50 * time.Millisecond) // a flight would have run by now
	if n := work.calls.Load(); n != 0 {
		t.Fatalf("an abandoned login ran %d bcrypts", n)
	}

	// Waiting for a slot: one check runs (held), the next waits, its
	// client gives up, it leaves at once, and it never runs.
	u = usersAt(t, bcrypt.MinCost, "alice", "s3cret", "bob", "hunter22")
	u.SetMaxConcurrentChecks(1)
	work = countWork(u)
	work.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() { first <- login(u, context.Background(), "alice", "s3cret") }()
	deadline := time.Now().Add(10 * time.Second)
	for u.sem.TryAcquire(1) { // until the first login holds the only slot
		u.sem.Release(1)
		if time.Now().After(deadline) {
			t.Fatal("the first login never took the slot")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := login(u, ctx, "bob", "hunter22")
	waited := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("login behind a busy slot: %v, want the deadline", err)
	}
	close(work.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := work.calls.Load(); n != 1 {
		t.Fatalf("%d bcrypt runs, want only the first login's (the abandoned one never starts)", n)
	}
	t.Logf("the abandoned request left after %v", waited)
}

// TestCacheRefreshedByUse: a user who keeps logging in keeps its cache
// entry (no bcrypt, so no latency spike every TTL) until the hard cap.
func TestCacheRefreshedByUse(t *testing.T) {
	u := usersAt(t, bcrypt.MinCost, "alice", "s3cret")
	work := countWork(u)
	now := time.Unix(1000, 0)
	u.cache.now = func() time.Time { return now }
	for elapsed := time.Duration(0); elapsed <= DefaultCredentialCacheMaxAge+40*time.Second; elapsed += 40 * time.Second {
		if err := login(u, context.Background(), "alice", "s3cret"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(40 * time.Second) // less than the 1 min TTL, every time
	}
	if n := work.calls.Load(); n != 2 {
		// One at the start and one at the hard cap (10 min).
		t.Fatalf("%d bcrypt runs over 10 minutes of logins every 40 s, want 2", n)
	}
	// Idle for longer than the TTL: the entry is gone.
	now = now.Add(DefaultCredentialCacheTTL + time.Second)
	work.reset()
	if err := login(u, context.Background(), "alice", "s3cret"); err != nil || work.calls.Load() != 1 {
		t.Fatalf("after an idle minute: %v, %d bcrypt runs; want one", err, work.calls.Load())
	}
}

// TestPasswordsBcryptCannotHold: a password bcrypt cannot hold exactly is
// refused at hashing, and no login succeeds by bcrypt's truncation or its
// NUL terminator.
func TestPasswordsBcryptCannotHold(t *testing.T) {
	p72 := strings.Repeat("p", 72)
	u := usersAt(t, bcrypt.MinCost, "alice", "s3cret", "long", p72)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"exact", "alice", "s3cret", true},
		{"NUL, then the password again", "alice", "s3cret\x00s3cret", false},
		{"NUL, then anything", "alice", "s3cret\x00", false},
		{"72 bytes, exact", "long", p72, true},
		{"72 bytes and a suffix", "long", p72 + "x", false},
		{"72 bytes and a long suffix", "long", p72 + strings.Repeat("y", 100), false},
	} {
		err := login(u, ctx, tc.user, tc.pass)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: %v, want ErrInvalidCredentials", tc.name, err)
		}
	}
	for _, bad := range []string{"s3cret\x00s3cret", "\x00", "", p72 + "x"} {
		if _, err := HashPassword("bob", bad, bcrypt.MinCost); !errors.Is(err, ErrPasswordUnrepresentable) {
			t.Errorf("HashPassword(%q): %v, want ErrPasswordUnrepresentable", bad, err)
		}
	}
	if _, err := HashPassword("bob", p72, bcrypt.MinCost); err != nil {
		t.Errorf("a 72-byte password: %v", err)
	}
}

// TestUnknownUserTiming: with a users file mixing costs 4 and 6, a wrong
// password for a cost-4 user, for a cost-6 user and for an unknown user all
// cost the same bcrypt work: 2^6 rounds. Work, not time, is compared, so
// the test cannot flake on a loaded machine; the wall-clock times side by
// side are BenchmarkLoginTimingMixedCosts's (a wall-clock assertion here
// failed 2 times in 12 runs beside a busy whole-suite run).
func TestUnknownUserTiming(t *testing.T) {
	low, err := HashPassword("cheap", "pw-cheap", 4)
	if err != nil {
		t.Fatal(err)
	}
	high, err := HashPassword("dear", "pw-dear", 6)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUsersFile(writeUsers(t, low, high))
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := u.Costs(); lo != 4 || hi != 6 {
		t.Fatalf("Costs() = %d, %d", lo, hi)
	}
	work := countWork(u)
	users := []string{"cheap", "dear", "nobody", ""}
	for _, name := range users {
		work.reset()
		if err := login(u, context.Background(), name, "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%q: %v", name, err)
		}
		if r := work.rounds.Load(); r != 1<<6 {
			t.Errorf("%q: %d bcrypt rounds, want %d like every other user", name, r, 1<<6)
		}
	}
	// Known users with the right password pay the same on a cache miss.
	u.SetCacheTTL(0)
	work.reset()
	if err := login(u, context.Background(), "cheap", "pw-cheap"); err != nil || work.rounds.Load() != 1<<6 {
		t.Errorf("cost-4 user, right password: %v, %d rounds", err, work.rounds.Load())
	}
}

// TestConnectLatencyHistogram: /metrics has the /v1/connect latency by
// result.
func TestConnectLatencyHistogram(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.connect(t, nil, goodLogin, nil)
	ts.connect(t, nil, `{"username":"alice","password":"nope"}`, nil)
	ts.connect(t, nil, `{"username":`, nil)
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wsdirect_auth_connect_seconds_count{result="ok"} 1`,
		`wsdirect_auth_connect_seconds_count{result="invalid_credentials"} 1`,
		`wsdirect_auth_connect_seconds_count{result="bad_request"} 1`,
		`wsdirect_auth_connect_seconds_count{result="no_capacity"} 0`,
		`wsdirect_auth_connect_seconds_bucket{result="ok",le="0.00025"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestConnectRequestStrict: the request decoder takes exactly one object
// with string username and password, and a reason that is empty or
// "rebalance".
func TestConnectRequestStrict(t *testing.T) {
	ok := map[string]wire.ConnectRequest{
		``:                                       {},
		`{}`:                                     {},
		`{"username":"a","password":"b"}`:        {Username: "a", Password: "b"},
		" \n{\"username\":\"\u00e9\"}\n":         {Username: "é"},
		`{"username":"a\u0000b","password":"c"}`: {Username: "a\x00b", Password: "c"},
		`{"username":"a","password":"b","reason":"rebalance"}`: {Username: "a", Password: "b", Reason: wire.ReasonRebalance},
		`{"reason":"rebalance"}`:                               {Reason: wire.ReasonRebalance},
		`{"reason":""}`:                                        {},
	}
	for body, want := range ok {
		got, err := DecodeConnectRequest([]byte(body))
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", body, got, err, want)
		}
	}
	for _, body := range []string{
		`{"username":"mallory","password":"x","username":"alice"}`,
		`{"username":"a","password":"b","Password":"c"}`,
		`{"Username":"a"}`,
		`{"username":1}`,
		`{"username":null,"password":null,"extra":1}`,
		"{\"username\":\"a\xffb\"}",
		`{"username":"\ud800"}`,
		`{"username":"a"} {}`,
		`[]`, `"x"`, ` `, `{`,
		`{"reason":"drain"}`, `{"reason":"Rebalance"}`, `{"reason":true}`, `{"reason":null,"reason":"rebalance"}`,
	} {
		if _, err := DecodeConnectRequest([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		} else if strings.Contains(err.Error(), "\xff") {
			t.Errorf("%q: the error echoes the input: %v", body, err)
		}
	}
	// Over HTTP: 400 bad_request, nothing charged.
	ts := newTestServer(t, nil)
	resp, data := ts.connect(t, nil, `{"username":"alice","password":"wrong","password":"s3cret"}`, nil)
	var e wire.Error
	_ = json.Unmarshal(data, &e)
	if resp.StatusCode != http.StatusBadRequest || e.Code != ResultBadRequest {
		t.Errorf("duplicate password member: %d %s", resp.StatusCode, data)
	}
}

// BenchmarkLoginTimingMixedCosts: a users file with one user at cost 5
// (htpasswd -B's default) and one at 10 (hash-password's). A wrong password
// for either, and any password for an unknown user, cost the same: the work
// of cost 10. Compare ns/op across the three sub-benchmarks of one run.
func BenchmarkLoginTimingMixedCosts(b *testing.B) {
	var lines []string
	for _, uc := range []struct {
		user string
		cost int
	}{{"cost5", 5}, {"cost10", 10}} {
		l, err := HashPassword(uc.user, "right", uc.cost)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, l)
	}
	p := b.TempDir() + "/users"
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	u, err := NewUsersFile(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"cost5", "cost10", "unknown"} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := login(u, context.Background(), name, "wrong"); !errors.Is(err, ErrInvalidCredentials) {
					b.Fatal(err)
				}
			}
		})
	}
}
