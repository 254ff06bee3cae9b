package authsvc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// bcryptHashLen is the length of every modular-crypt bcrypt hash
// ("$2b$10$" + 22 salt + 31 hash characters).
const bcryptHashLen = 60

// UsersFile authenticates against a file of "user:bcrypthash" lines, the
// format `htpasswd -B` writes. Blank lines and lines starting with '#' are
// ignored. Only bcrypt hashes ($2a$, $2b$, $2y$) are accepted: htpasswd's
// MD5 and SHA1 schemes are too fast to resist offline guessing.
//
// A check that cannot be answered from the cache of recent successes costs
// the bcrypt work of the file's highest cost, whoever asks (see padding on
// userTable): a user name cannot be told from its answer time, even when
// the file mixes costs (htpasswd -B defaults to 5, hash-password to 10).
//
// Concurrent checks of one user with one password share one bcrypt run
// (singleflight): after a node failure its clients log in again at once, and
// each running bcrypt for the same answer would make the last of them wait
// for all the others. At most MaxConcurrentChecks bcrypt runs at once; a
// request whose client gives up while waiting for one leaves without
// starting it. A bcrypt run that started finishes (it cannot be stopped),
// and its result fills the cache for whoever asks next.
//
// UsersFile is safe for concurrent use; Reload swaps the whole table at once.
type UsersFile struct {
	path string
	// read, when set, loads the content instead of reading path
	// (NewUsersFileFrom).
	read func() ([]byte, error)

	mu    sync.RWMutex
	table *userTable

	// cache remembers recent successful checks; see credCache.
	cache *credCache
	// flights deduplicates concurrent checks of one user and password.
	flights singleflight.Group
	// sem bounds the bcrypt runs in progress.
	sem *semaphore.Weighted
	// compare is bcrypt.CompareHashAndPassword; tests count the work done
	// through it.
	compare func(hash, password []byte) error
}

// userTable is one loaded users file.
type userTable struct {
	users map[string]userEntry
	// maxCost is the highest bcrypt cost in the file: every check costs
	// 2^maxCost bcrypt rounds, whoever asks.
	maxCost, minCost int
	// pads[c] is a hash of cost c that no password matches, for c in
	// [minCost, maxCost]. An unknown user is checked against pads[maxCost];
	// a known user of cost c is checked against its own hash and then
	// against pads[c], pads[c+1], ..., pads[maxCost-1]: 2^c + (2^c + ... +
	// 2^(maxCost-1)) = 2^maxCost rounds either way. The extra calls add a
	// few microseconds of set-up each, against milliseconds of rounds.
	pads map[int][]byte
}

type userEntry struct {
	hash []byte
	cost int
}

// DefaultMaxConcurrentChecks is how many bcrypt checks run at once by
// default: one per CPU. More would only slow each of them down, and a
// request queued for a slot can still give up without spending any CPU.
func DefaultMaxConcurrentChecks() int { return runtime.GOMAXPROCS(0) }

// NewUsersFile loads path. A malformed file is an error naming the line.
func NewUsersFile(path string) (*UsersFile, error) { return NewUsersFileFrom(path, nil) }

// NewUsersFileFrom loads users-file content that read returns, now and on
// every Reload: for a file kept elsewhere, such as a Parameter Store
// parameter. name (the reference) stands for the file in errors and Path.
// A nil read reads the file name.
func NewUsersFileFrom(name string, read func() ([]byte, error)) (*UsersFile, error) {
	u := &UsersFile{
		path:    name,
		read:    read,
		cache:   newCredCache(DefaultCredentialCacheTTL, DefaultCredentialCacheMaxAge, DefaultCredentialCacheSize),
		sem:     semaphore.NewWeighted(int64(DefaultMaxConcurrentChecks())),
		compare: bcrypt.CompareHashAndPassword,
	}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// SetCacheTTL sets how long a successful password check is remembered after
// its last use (DefaultCredentialCacheTTL by default), keeping the hard cap
// DefaultCredentialCacheMaxAge (or ttl, if longer); 0 turns the cache off,
// so that every login runs bcrypt. Call before use.
func (u *UsersFile) SetCacheTTL(ttl time.Duration) {
	u.cache = newCredCache(ttl, max(ttl, DefaultCredentialCacheMaxAge), DefaultCredentialCacheSize)
}

// SetCacheLimits sets the cache's idle TTL and its hard cap on an entry's
// age (see credCache). Call before use.
func (u *UsersFile) SetCacheLimits(ttl, maxAge time.Duration) {
	u.cache = newCredCache(ttl, max(ttl, maxAge), DefaultCredentialCacheSize)
}

// SetMaxConcurrentChecks bounds the bcrypt checks running at once (at least
// 1). Call before use.
func (u *UsersFile) SetMaxConcurrentChecks(n int) {
	u.sem = semaphore.NewWeighted(int64(max(n, 1)))
}

// Path is the file the table is loaded from.
func (u *UsersFile) Path() string { return u.path }

// Len is the number of users currently loaded.
func (u *UsersFile) Len() int {
	return len(u.current().users)
}

// Costs are the lowest and highest bcrypt costs in the file. When they
// differ, every check costs as much as the highest (see UsersFile), which an
// operator may want to know.
func (u *UsersFile) Costs() (lowest, highest int) {
	t := u.current()
	return t.minCost, t.maxCost
}

func (u *UsersFile) current() *userTable {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.table
}

// Reload re-reads the file (on SIGHUP). On error the previous table stays in
// force, so a typo in an edit does not lock everybody out.
func (u *UsersFile) Reload() error {
	read := u.read
	if read == nil {
		read = func() ([]byte, error) { return os.ReadFile(u.path) }
	}
	data, err := read()
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	users, _, err := ParseUsers(data)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	t, err := newUserTable(users)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	u.mu.Lock()
	u.table = t
	u.mu.Unlock()
	return nil
}

func newUserTable(users map[string][]byte) (*userTable, error) {
	t := &userTable{users: make(map[string]userEntry, len(users)), minCost: bcrypt.DefaultCost, maxCost: bcrypt.DefaultCost}
	first := true
	for name, h := range users {
		c, err := bcrypt.Cost(h)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		t.users[name] = userEntry{hash: h, cost: c}
		if first || c < t.minCost {
			t.minCost = c
		}
		if first || c > t.maxCost {
			t.maxCost = c
		}
		first = false
	}
	// One real hash at the lowest cost, relabelled for each cost: bcrypt
	// takes the cost from the hash, so the work is that of the label, and
	// the random password it was made from is thrown away.
	var pw [18]byte
	if _, err := cryptoRandRead(pw[:]); err != nil {
		return nil, fmt.Errorf("padding hash: %w", err)
	}
	base, err := bcrypt.GenerateFromPassword(pw[:], bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("padding hash: %w", err)
	}
	t.pads = make(map[int][]byte, t.maxCost-t.minCost+1)
	for c := t.minCost; c <= t.maxCost; c++ {
		p := bytes.Clone(base)
		copy(p[4:6], fmt.Sprintf("%02d", c)) // "$2a$04$..." → "$2a$cc$..."
		t.pads[c] = p
	}
	return t, nil
}

// ParseUsers parses users-file content into user → bcrypt hash, and returns
// the highest bcrypt cost seen (bcrypt.DefaultCost for an empty file).
func ParseUsers(data []byte) (map[string][]byte, int, error) {
	users := make(map[string][]byte)
	maxCost := bcrypt.DefaultCost
	seenCost := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok {
			return nil, 0, fmt.Errorf("line %d: want \"user:bcrypthash\", found no ':'", line)
		}
		if user == "" {
			return nil, 0, fmt.Errorf("line %d: empty user name", line)
		}
		if strings.ContainsAny(user, " \t") {
			return nil, 0, fmt.Errorf("line %d: user name %q contains white space", line, user)
		}
		if !utf8.ValidString(user) || strings.IndexFunc(user, unicode.IsControl) >= 0 {
			// Such a name could never be put in a token.
			return nil, 0, fmt.Errorf("line %d: user name %q is not valid UTF-8 or contains a control character", line, user)
		}
		if _, dup := users[user]; dup {
			return nil, 0, fmt.Errorf("line %d: user %q listed twice", line, user)
		}
		if !(strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
			return nil, 0, fmt.Errorf("line %d: user %q: not a bcrypt hash (want $2a$, $2b$ or $2y$; create one with `wsdirect-auth hash-password` or `htpasswd -nB`)", line, user)
		}
		if len(hash) != bcryptHashLen {
			return nil, 0, fmt.Errorf("line %d: user %q: bcrypt hash has %d characters, want %d", line, user, len(hash), bcryptHashLen)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: user %q: %w", line, user, err)
		}
		if !seenCost || cost > maxCost {
			maxCost, seenCost = cost, true
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", line+1, err)
	}
	return users, maxCost, nil
}

// errNotRun is a flight's answer when it never ran bcrypt: its leader was
// refused by the login limiter or gave up while waiting for a slot. The
// other requests sharing the flight did not, so they try again.
var errNotRun = errors.New("credential check not run")

// Authenticate implements Authenticator with the JSON username and password.
func (u *UsersFile) Authenticate(ctx context.Context, _ *http.Request, req wire.ConnectRequest) (string, error) {
	if err := CheckPassword(req.Password); err != nil {
		// Refused before bcrypt, whoever the user: nothing about the user
		// shows, and no password is ever accepted by truncation.
		return "", fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	t := u.current()
	e, known := t.users[req.Username]
	if known && u.cache.hit(req.Username, req.Password, e.hash) {
		return req.Username, nil
	}
	// One flight per user and password; the key holds an HMAC, never the
	// password.
	key := req.Username + "\x00" + u.cache.keyOf(req.Password)
	for tries := 0; ; tries++ {
		led := false
		ch := u.flights.DoChan(key, func() (any, error) {
			led = true
			return u.check(ctx, t, req.Username, req.Password)
		})
		select {
		case <-ctx.Done():
			// The client gave up: stop waiting. A flight that runs goes on
			// for the others sharing it and for the cache.
			return "", ctx.Err()
		case res := <-ch:
			// led is written before the flight's result is sent.
			if errors.Is(res.Err, errNotRun) && !led && tries < 3 {
				continue // the leader was refused; this request was not
			}
			if res.Err != nil {
				return "", res.Err
			}
			return res.Val.(string), nil
		}
	}
}

// check runs bcrypt for one flight, charged to the flight leader's login
// gate before it starts (see loginGate).
func (u *UsersFile) check(ctx context.Context, t *userTable, user, password string) (string, error) {
	// A flight that ended just before this one started may have filled the
	// cache after this request looked.
	if e, known := t.users[user]; known && u.cache.hit(user, password, e.hash) {
		return user, nil
	}
	g := gateFrom(ctx)
	if !g.acquire() {
		return "", fmt.Errorf("%w: %w", errNotRun, ErrRateLimited)
	}
	if err := u.sem.Acquire(ctx, 1); err != nil {
		g.release(outcomeNotRun)
		return "", fmt.Errorf("%w: %w", errNotRun, err)
	}
	if err := ctx.Err(); err != nil {
		// Acquire may succeed at once for a request already abandoned.
		u.sem.Release(1)
		g.release(outcomeNotRun)
		return "", fmt.Errorf("%w: %w", errNotRun, err)
	}
	ok := u.compareEqualWork(t, user, password)
	u.sem.Release(1)
	if !ok {
		g.release(outcomeFailed)
		return "", ErrInvalidCredentials
	}
	g.release(outcomeSucceeded)
	u.cache.store(user, password, t.users[user].hash)
	return user, nil
}

// compareEqualWork checks password for user with 2^maxCost bcrypt rounds
// whatever the user (see userTable.pads).
func (u *UsersFile) compareEqualWork(t *userTable, user, password string) bool {
	pw := []byte(password)
	e, known := t.users[user]
	if !known {
		_ = u.compare(t.pads[t.maxCost], pw)
		return false
	}
	err := u.compare(e.hash, pw)
	for c := e.cost; c < t.maxCost; c++ {
		_ = u.compare(t.pads[c], pw)
	}
	return err == nil
}

// HashPassword returns a users-file line for user with a bcrypt hash of
// password at cost (bcrypt.DefaultCost when 0). A password bcrypt cannot
// hold exactly (CheckPassword) is refused.
func HashPassword(user, password string, cost int) (string, error) {
	if user == "" || strings.ContainsAny(user, ": \t\r\n") || !utf8.ValidString(user) || strings.IndexFunc(user, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("user name %q must be non-empty UTF-8 without ':', white space or control characters", user)
	}
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", err
	}
	return user + ":" + string(h), nil
}
