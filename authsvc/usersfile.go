package authsvc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

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
// UsersFile is safe for concurrent use; Reload swaps the whole table at once.
type UsersFile struct {
	path string
	// read, when set, loads the content instead of reading path
	// (NewUsersFileFrom).
	read func() ([]byte, error)

	mu    sync.RWMutex
	users map[string][]byte
	// dummy is compared against for unknown users, so that an unknown user
	// costs the same bcrypt work as a known one and user names cannot be
	// enumerated by timing.
	dummy []byte

	// cache remembers recent successful checks; see credCache.
	cache *credCache
}

// NewUsersFile loads path. A malformed file is an error naming the line.
func NewUsersFile(path string) (*UsersFile, error) { return NewUsersFileFrom(path, nil) }

// NewUsersFileFrom loads users-file content that read returns, now and on
// every Reload: for a file kept elsewhere, such as a Parameter Store
// parameter. name (the reference) stands for the file in errors and Path.
// A nil read reads the file name.
func NewUsersFileFrom(name string, read func() ([]byte, error)) (*UsersFile, error) {
	u := &UsersFile{path: name, read: read, cache: newCredCache(DefaultCredentialCacheTTL, DefaultCredentialCacheSize)}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// SetCacheTTL sets how long a successful password check is remembered
// (DefaultCredentialCacheTTL by default); 0 turns the cache off, so that every
// login runs bcrypt. Call before use.
func (u *UsersFile) SetCacheTTL(ttl time.Duration) {
	u.cache = newCredCache(ttl, DefaultCredentialCacheSize)
}

// Path is the file the table is loaded from.
func (u *UsersFile) Path() string { return u.path }

// Len is the number of users currently loaded.
func (u *UsersFile) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.users)
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
	users, maxCost, err := ParseUsers(data)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	u.mu.RLock()
	dummy := u.dummy
	u.mu.RUnlock()
	// The dummy hash must cost what real hashes cost, else unknown users
	// answer faster. Regenerate only when the highest cost changed.
	if c, err := bcrypt.Cost(dummy); dummy == nil || err != nil || c != maxCost {
		dummy, err = bcrypt.GenerateFromPassword([]byte("wsdirect-dummy-password"), maxCost)
		if err != nil {
			return fmt.Errorf("users file: dummy hash: %w", err)
		}
	}
	u.mu.Lock()
	u.users, u.dummy = users, dummy
	u.mu.Unlock()
	return nil
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

// Authenticate implements Authenticator with the JSON username and password.
func (u *UsersFile) Authenticate(_ context.Context, _ *http.Request, req wire.ConnectRequest) (string, error) {
	u.mu.RLock()
	hash, known := u.users[req.Username]
	dummy := u.dummy
	u.mu.RUnlock()
	if !known {
		hash = dummy
	} else if req.Username != "" && u.cache.hit(req.Username, req.Password, hash) {
		return req.Username, nil
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(req.Password))
	if !known || req.Username == "" {
		return "", ErrInvalidCredentials
	}
	if err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return "", ErrInvalidCredentials
		}
		// A password beyond bcrypt's 72 bytes, or a corrupt hash: still a
		// failed login from the client's point of view.
		return "", fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	u.cache.store(req.Username, req.Password, hash)
	return req.Username, nil
}

// HashPassword returns a users-file line for user with a bcrypt hash of
// password at cost (bcrypt.DefaultCost when 0).
func HashPassword(user, password string, cost int) (string, error) {
	if user == "" || strings.ContainsAny(user, ": \t\r\n") {
		return "", fmt.Errorf("user name %q must be non-empty without ':' or white space", user)
	}
	if password == "" {
		return "", errors.New("empty password")
	}
	if len(password) > 72 {
		return "", errors.New("password longer than 72 bytes (bcrypt's limit)")
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
