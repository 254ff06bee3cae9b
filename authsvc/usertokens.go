package authsvc

import (
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// DefaultMaxUserTokens is the default per-user limit on outstanding tokens.
// A person's browser tabs and devices reconnecting at once stay well below
// it; a client that asks for tokens in a loop and never connects is held to
// it, and so is the weight its tokens add to the picker's pending counts.
const DefaultMaxUserTokens = 10

// DefaultMaxTrackedUsers bounds the per-user token table.
const DefaultMaxTrackedUsers = 100_000

// userTokens limits the tokens each user holds that have not been redeemed
// as far as this instance can tell (Config.MaxUserTokens).
//
// Why this measure: auth never hears that a token was used, only the
// nodes' gossiped counts. A token stops being outstanding by the same rule
// that stops it counting as pending in the picker: its node's count was
// heard more than the settle time after the token was minted (the client has
// connected and is inside that count, or never will), or the token expired,
// or the node left the view. So a user's outstanding tokens are exactly the
// share of the picker's pending weight that user can put on nodes, which is
// what made the cluster look full when one user minted a thousand tokens and
// used none. A user who connects gets room back within about a second; a
// user who hoards waits for the nodes' next counts (at most their count
// refresh interval).
//
// Open connections per user are capped where they are known, on each node
// (node.Config.MaxConnsPerUser); auth would need per-user counts from every
// node to cap them cluster-wide.
type userTokens struct {
	// pool is the name tokens are minted for when a balancer picks the
	// node (Balancer): such a token may be on any node, so it stops being
	// outstanding by the latest count heard from any of them.
	pool    string
	limit   int
	ttl     time.Duration
	settle  time.Duration
	maxUser int

	mu        sync.Mutex
	users     map[string]*userQueue
	lastSweep time.Time
}

type userQueue struct {
	tickets []*tokenTicket
}

// tokenTicket is one outstanding token, or a slot reserved for a token
// being picked and minted (node "").
type tokenTicket struct {
	user string
	node string
	at   time.Time
}

func newUserTokens(limit int, ttl, settle time.Duration, maxUsers int) *userTokens {
	return &userTokens{limit: limit, ttl: ttl, settle: settle, maxUser: maxUsers, users: make(map[string]*userQueue)}
}

// reserve takes a slot for one more token of user, or reports false and
// how long until the oldest outstanding token can stop being outstanding:
// Settle after it was minted, when its node's next count may include it
// (a user whose clients connect gets room back then), and at the latest
// when it expires. Waiting for the expiry alone would keep a user's
// clients out for a token lifetime after a burst, such as a node's drain,
// sent more of them to auth at once than the limit.
func (u *userTokens) reserve(user string, nodes []cluster.Member, now time.Time) (*tokenTicket, bool, time.Duration) {
	if u == nil || u.limit <= 0 {
		return nil, true, 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sweep(nodes, now)
	q := u.users[user]
	if q == nil {
		if len(u.users) >= u.maxUser {
			// Table full of users with outstanding tokens: refusing is
			// safer than forgetting someone's tokens.
			return nil, false, u.settle
		}
		q = &userQueue{}
		u.users[user] = q
	}
	q.prune(nodes, now, u.ttl, u.settle, u.pool)
	if len(q.tickets) >= u.limit {
		oldest := q.tickets[0].at
		return nil, false, oldest.Add(min(u.ttl, u.settle)).Sub(now)
	}
	t := &tokenTicket{user: user, at: now}
	q.tickets = append(q.tickets, t)
	return t, true, 0
}

// assign records the node a reserved slot's token was minted for.
func (u *userTokens) assign(t *tokenTicket, node string) {
	if t == nil {
		return
	}
	u.mu.Lock()
	t.node = node
	u.mu.Unlock()
}

// cancel gives back a slot whose token was never handed out.
func (u *userTokens) cancel(t *tokenTicket) {
	if t == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	q := u.users[t.user]
	if q == nil {
		return
	}
	for i, x := range q.tickets {
		if x == t {
			q.tickets = append(q.tickets[:i], q.tickets[i+1:]...)
			break
		}
	}
	if len(q.tickets) == 0 {
		delete(u.users, t.user)
	}
}

// sweep drops users with nothing outstanding, at most once per TTL.
func (u *userTokens) sweep(nodes []cluster.Member, now time.Time) {
	if now.Sub(u.lastSweep) < u.ttl && len(u.users) < u.maxUser {
		return
	}
	u.lastSweep = now
	for name, q := range u.users {
		if q.prune(nodes, now, u.ttl, u.settle, u.pool) == 0 {
			delete(u.users, name)
		}
	}
}

// prune retires tickets per the rule on userTokens and returns how many
// remain. Slots still being minted (node "") stay.
func (q *userQueue) prune(nodes []cluster.Member, now time.Time, ttl, settle time.Duration, pool string) int {
	keep := q.tickets[:0]
	for _, t := range q.tickets {
		if t.node != "" {
			if !t.at.After(now.Add(-ttl)) {
				continue // expired
			}
			if heard, ok := heardAt(nodes, t.node, pool); !ok || (!heard.IsZero() && heard.After(t.at.Add(settle))) {
				continue // node gone, or its count already includes it
			}
		}
		keep = append(keep, t)
	}
	for i := len(keep); i < len(q.tickets); i++ {
		q.tickets[i] = nil
	}
	q.tickets = keep
	return len(keep)
}

// heardAt is when the view last heard node's count, and whether the node is
// in the view. For the pool name it is the latest count heard from any
// node, and whether there is one.
func heardAt(nodes []cluster.Member, name, pool string) (time.Time, bool) {
	if name == pool {
		var latest time.Time
		for i := range nodes {
			if nodes[i].UpdatedAt.After(latest) {
				latest = nodes[i].UpdatedAt
			}
		}
		return latest, len(nodes) > 0
	}
	for i := range nodes {
		if nodes[i].Name == name {
			return nodes[i].UpdatedAt, true
		}
	}
	return time.Time{}, false
}
