package node

import (
	"hash/maphash"
	"sync"
)

// userShards splits the per-user table so a connect burst does not
// serialise on one lock.
const userShards = 32

// userCounts is the number of open connections (and upgrades past the
// token check) per user, for Config.MaxConnsPerUser. With no limit it keeps
// nothing, so a node whose clients share one user pays no map entry per
// connection.
type userCounts struct {
	limit  int
	seed   maphash.Seed
	shards [userShards]struct {
		mu sync.Mutex
		m  map[string]int
	}
}

func (u *userCounts) init(limit int) {
	u.limit = limit
	if limit <= 0 {
		return
	}
	u.seed = maphash.MakeSeed()
	for i := range u.shards {
		u.shards[i].m = make(map[string]int)
	}
}

// acquire counts one more connection for user, or reports false when the
// user is at the limit.
func (u *userCounts) acquire(user string) bool {
	if u.limit <= 0 {
		return true
	}
	s := &u.shards[maphash.String(u.seed, user)%userShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[user] >= u.limit {
		return false
	}
	s.m[user]++
	return true
}

// release undoes one acquire.
func (u *userCounts) release(user string) {
	if u.limit <= 0 {
		return
	}
	s := &u.shards[maphash.String(u.seed, user)%userShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.m[user]; n > 1 {
		s.m[user] = n - 1
	} else {
		delete(s.m, user) // no entry for users with nothing open
	}
}
