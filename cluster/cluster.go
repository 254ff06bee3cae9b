package cluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Cluster is the local serf member plus its view of everyone else.
type Cluster struct {
	conf   Config
	log    *slog.Logger
	serf   *serf.Serf
	events chan serf.Event
	// gossipAddr is read once at Create: memberlist's LocalNode returns a
	// pointer into state that SetTags rewrites, so reading it later races.
	gossipAddr string
	// keyring is the gossip keyring (nil without encryption); SetKeys
	// changes it in place.
	keyring *memberlist.Keyring

	// mu guards members and unknown. The event goroutine is the only
	// writer.
	mu      sync.RWMutex
	members map[string]*entry
	// unknown counts the entries with known false, to bound them.
	unknown int

	// countKey signs the counts this member publishes (nodes only); its
	// public half is in the tags.
	countKey ed25519.PrivateKey

	// conns is the local count; SetConns stores it and pokes kick.
	conns atomic.Int64
	kick  chan struct{}
	// seq numbers published counts; only the publisher goroutine uses it.
	seq uint64

	// updates counts member-update events seen (tag changes, i.e.
	// incarnation bumps); the freshness benchmarks report it as churn.
	updates atomic.Int64

	// tagsMu serialises SetTags calls (draining, and counts in CountsTags
	// mode) and guards facts.
	tagsMu sync.Mutex
	facts  staticFacts

	stop     chan struct{}
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
}

// entry is one member in the view. known is false for members we have only
// heard a count from (user events can overtake the join gossip); they are
// not listed until serf reports them.
//
// A count is applied only when signed with key, the count key from the
// member's own tags; until that is known the latest count waits in pending.
// When the key changes (the member restarted, or its tags were forged and
// then refuted), seq starts over: a new signer's counts are not ordered
// after the old one's. When the member leaves or fails, its count, seq and
// pending count are dropped: nothing it said outlives it.
type entry struct {
	m       Member
	seq     uint64
	known   bool
	key     ed25519.PublicKey
	pending []byte
}

// maxUnknownEntries bounds the counts held for members serf has not
// reported yet, so that counts under made-up names cannot grow the view.
const maxUnknownEntries = 1024

// Create starts the local member, bound and gossiping but alone until Join.
// It uses conf as given: it returns an error naming the first missing or
// out-of-range field.
func Create(conf *Config) (*Cluster, error) {
	if conf == nil {
		return nil, errors.New("cluster: nil Config")
	}
	c := *conf
	if err := checkName(c.Name); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	facts, err := normalizeFacts(&c)
	if err != nil {
		return nil, err
	}
	var keyring *memberlist.Keyring
	if len(c.SecretKey) == 0 && len(c.ExtraKeys) > 0 {
		return nil, errors.New("cluster: ExtraKeys need a SecretKey to send with")
	}
	switch {
	case len(c.SecretKey) == 0 && !c.Dev:
		return nil, errors.New("cluster: a gossip key is required (SecretKey, from -gossip-key-file; generate one with `wsdirect-auth keygen`); only Dev mode may run unencrypted")
	case len(c.SecretKey) > 0:
		if err := checkKeyLen(c.SecretKey); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if !c.Dev && len(c.SecretKey) != KeySize {
			return nil, fmt.Errorf("cluster: gossip key must be %d bytes (AES-256) outside Dev mode, got %d", KeySize, len(c.SecretKey))
		}
		key := append([]byte(nil), c.SecretKey...)
		extra, err := checkExtraKeys(c.ExtraKeys, c.Dev)
		if err != nil {
			return nil, err
		}
		if keyring, err = memberlist.NewKeyring(extra, key); err != nil {
			return nil, fmt.Errorf("cluster: gossip keyring: %w", err)
		}
	}

	var countKey ed25519.PrivateKey
	if facts.role == RoleNode {
		// A new key per process: nothing to store, and a restarted member
		// is a new signer (see entry).
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("cluster: count key: %w", err)
		}
		facts.countKey, countKey = encodeCountKey(pub), priv
	}
	cl := &Cluster{
		conf:     c,
		countKey: countKey,
		log:      c.Logger.With("component", "cluster", "member", c.Name),
		events:   make(chan serf.Event, 1024),
		members:  make(map[string]*entry),
		kick:     make(chan struct{}, 1),
		seq:      uint64(time.Now().UnixMicro()),
		facts:    facts,
		stop:     make(chan struct{}),
		keyring:  keyring,
	}

	logger := newStdLogger(cl.log)
	ml := memberlist.DefaultLANConfig()
	ml.BindAddr = c.BindAddr
	if ml.BindAddr == "" {
		ml.BindAddr = "0.0.0.0"
	}
	ml.BindPort = c.BindPort
	ml.AdvertiseAddr = c.AdvertiseAddr
	ml.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		// memberlist advertises BindPort unless told otherwise; with
		// BindPort 0 it fills both in once the port is bound.
		ml.AdvertisePort = c.BindPort
	}
	ml.GossipInterval = c.GossipInterval
	ml.GossipNodes = c.GossipNodes
	ml.ProbeInterval = c.ProbeInterval
	ml.ProbeTimeout = c.ProbeTimeout
	ml.SuspicionMult = c.SuspicionMult
	ml.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	ml.IndirectChecks = c.IndirectChecks
	ml.RetransmitMult = c.RetransmitMult
	ml.PushPullInterval = c.PushPullInterval
	ml.TCPTimeout = c.TCPTimeout
	ml.GossipToTheDeadTime = c.GossipToTheDeadTime
	// Gossip packets are small, and memberlist compresses each with a new
	// LZW writer (16 KiB of tables): under message load a fifth of a
	// node's garbage, for a few bytes a packet. Peers still read
	// compressed packets, so a rolling upgrade mixes freely.
	ml.EnableCompression = false
	ml.Logger = logger
	if keyring != nil {
		ml.Keyring = keyring
		// Refuse plaintext in both directions: without this a keyless
		// process could still gossip (and inject counts) in plaintext.
		ml.GossipVerifyIncoming = true
		ml.GossipVerifyOutgoing = true
	}

	sc := serf.DefaultConfig()
	sc.NodeName = c.Name
	sc.Tags = facts.tags(c.CountMode, 0)
	sc.EventCh = cl.events
	sc.MemberlistConfig = ml
	sc.Logger = logger
	sc.LogOutput = nil
	sc.EventBuffer = c.EventBuffer
	sc.UserEventSizeLimit = 512
	// No coalescing: member changes and counts must reach the view at once.
	sc.CoalescePeriod, sc.QuiescentPeriod = 0, 0
	sc.UserCoalescePeriod, sc.UserQuiescentPeriod = 0, 0
	sc.ReapInterval = c.ReapInterval
	sc.ReconnectInterval = c.ReconnectInterval
	sc.ReconnectTimeout = c.ReconnectTimeout
	sc.TombstoneTimeout = c.TombstoneTimeout
	sc.LeavePropagateDelay = c.LeavePropagateDelay
	sc.BroadcastTimeout = c.BroadcastTimeout
	sc.DisableCoordinates = true // we never use network coordinates

	// The event loop must run before serf starts: serf delivers events
	// synchronously and would block on a full channel.
	cl.wg.Add(1)
	go cl.eventLoop()
	s, err := serf.Create(sc)
	if err != nil {
		close(cl.stop)
		cl.wg.Wait()
		return nil, fmt.Errorf("cluster: start serf on %s: %w", net.JoinHostPort(ml.BindAddr, strconv.Itoa(c.BindPort)), err)
	}
	cl.serf = s
	n := s.Memberlist().LocalNode()
	cl.gossipAddr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	cl.wg.Add(1)
	go cl.publisher()
	cl.log.Info("gossip started", "addr", cl.GossipAddr(), "role", facts.role,
		"encrypted", keyring != nil, "counts", c.CountMode.String())
	return cl, nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("cluster: Name is required")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("cluster: Name is %d bytes, limit is %d", len(name), MaxNameLen)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("cluster: Name %q contains whitespace or a control character", name)
	}
	return nil
}

// Join contacts the given gossip addresses (host or host:port; the port
// defaults to this member's bind port) and returns how many answered. It
// errors only when none did. Recent count events are replayed from the
// contacted members, so the joiner learns counts at once.
func (c *Cluster) Join(addrs []string) (int, error) {
	var clean []string
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a != "" {
			clean = append(clean, a)
		}
	}
	if len(clean) == 0 {
		return 0, errors.New("cluster: join: no addresses given")
	}
	n, err := c.serf.Join(clean, false)
	if err != nil {
		return n, fmt.Errorf("cluster: join %s: %w", strings.Join(clean, ","), err)
	}
	c.log.Info("joined cluster", "contacted", n, "members", c.serf.NumNodes())
	return n, nil
}

// SetConns records the local connection count. It is cheap (an atomic store
// and a non-blocking channel send) and safe to call on every connect and
// disconnect; a publisher goroutine broadcasts at most every CountInterval.
func (c *Cluster) SetConns(n int) {
	if n < 0 {
		n = 0
	}
	c.conns.Store(int64(n))
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// SetDraining sets or clears the draining tag. It blocks while serf
// broadcasts the change (at most BroadcastTimeout); draining is rare.
func (c *Cluster) SetDraining(draining bool) error {
	c.tagsMu.Lock()
	defer c.tagsMu.Unlock()
	if c.facts.draining == draining {
		return nil
	}
	c.facts.draining = draining
	if err := c.serf.SetTags(c.facts.tags(c.conf.CountMode, int(c.conns.Load()))); err != nil {
		c.facts.draining = !draining
		return fmt.Errorf("cluster: set draining=%v: %w", draining, err)
	}
	c.log.Info("draining changed", "draining", draining)
	return nil
}

// SetReady clears or sets the not-ready tag: a node that is not ready stays
// in the cluster but takes no assignments. It blocks while serf broadcasts
// the change (at most BroadcastTimeout).
func (c *Cluster) SetReady(ready bool) error {
	c.tagsMu.Lock()
	defer c.tagsMu.Unlock()
	if c.facts.notReady == !ready {
		return nil
	}
	c.facts.notReady = !ready
	if err := c.serf.SetTags(c.facts.tags(c.conf.CountMode, int(c.conns.Load()))); err != nil {
		c.facts.notReady = ready
		return fmt.Errorf("cluster: set ready=%v: %w", ready, err)
	}
	c.log.Info("readiness changed", "ready", ready)
	return nil
}

// Members returns a snapshot of every known member, including the local one
// and failed or left members not reaped yet (Alive false), sorted by name.
func (c *Cluster) Members() []Member {
	return c.snapshot(func(*Member) bool { return true })
}

// Nodes returns the alive members with RoleNode, sorted by name: the
// candidates for assignment (the picker still checks Draining and Cap).
func (c *Cluster) Nodes() []Member {
	return c.snapshot(func(m *Member) bool { return m.Alive && m.Role == RoleNode })
}

func (c *Cluster) snapshot(keep func(*Member) bool) []Member {
	c.mu.RLock()
	out := make([]Member, 0, len(c.members))
	for name, e := range c.members {
		if !e.known || !keep(&e.m) {
			continue
		}
		m := e.m
		if name == c.conf.Name {
			// Our own count is authoritative locally, before any gossip.
			m.Conns = int(c.conns.Load())
		}
		out = append(out, m)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// member returns one member's current view (used by tests and benchmarks).
func (c *Cluster) member(name string) (Member, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.members[name]
	if !ok || !e.known {
		return Member{}, false
	}
	return e.m, true
}

// LocalName is this member's name.
func (c *Cluster) LocalName() string { return c.conf.Name }

// GossipAddr is the host:port other members reach this one at: the
// advertised address, or the bound one (with the port actually picked when
// BindPort was 0).
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// Leave announces a graceful departure (others mark this member left at
// once instead of waiting for failure detection) and then shuts down.
func (c *Cluster) Leave() error {
	if err := c.serf.Leave(); err != nil {
		c.log.Warn("leave failed; shutting down anyway", "err", err)
		if serr := c.Shutdown(); serr != nil {
			return errors.Join(err, serr)
		}
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return c.Shutdown()
}

// Shutdown stops gossip without announcing it; others will see this
// member fail. Safe to call more than once.
func (c *Cluster) Shutdown() error {
	c.shutOnce.Do(func() {
		// serf first: its goroutines may still be delivering events,
		// which the event loop must keep draining until they stop.
		if err := c.serf.Shutdown(); err != nil {
			c.shutErr = fmt.Errorf("cluster: shutdown: %w", err)
		}
		close(c.stop)
		c.wg.Wait()
	})
	return c.shutErr
}

// publisher broadcasts the local count: a change at most once per
// CountInterval (measured from the previous change, so a refresh never
// delays a change), and in CountsUserEvents mode the unchanged count again
// when nothing was published for CountRefresh. CountsTags mode needs no
// refresh: tags are member state, which push/pull already syncs.
func (c *Cluster) publisher() {
	defer c.wg.Done()
	refresh := time.NewTicker(c.conf.CountRefresh / 2)
	defer refresh.Stop()
	last := int64(-1)
	var changedAt, publishedAt time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
			if wait := c.conf.CountInterval - time.Since(changedAt); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-c.stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
			n := c.conns.Load()
			if n == last {
				continue
			}
			if err := c.publish(int(n)); err != nil {
				c.log.Warn("publish connection count", "conns", n, "err", err)
				changedAt = time.Now() // retried on the next kick or refresh
				continue
			}
			last, changedAt, publishedAt = n, time.Now(), time.Now()
		case <-refresh.C:
			if c.conf.CountMode == CountsTags || time.Since(publishedAt) < c.conf.CountRefresh {
				continue
			}
			n := c.conns.Load()
			if err := c.publish(int(n)); err != nil {
				c.log.Warn("refresh connection count", "conns", n, "err", err)
				continue
			}
			last, publishedAt = n, time.Now()
		}
	}
}

func (c *Cluster) publish(n int) error {
	if c.conf.CountMode == CountsTags {
		c.tagsMu.Lock()
		defer c.tagsMu.Unlock()
		return c.serf.SetTags(c.facts.tags(CountsTags, n))
	}
	if c.countKey == nil {
		return nil // auth members publish no count
	}
	c.seq++
	msg := countMsg{name: c.conf.Name, seq: c.seq, conns: n}
	return c.serf.UserEvent(countEventName, msg.encode(c.countKey), false)
}

// eventLoop is the only writer of the member view.
func (c *Cluster) eventLoop() {
	defer c.wg.Done()
	purge := time.NewTicker(c.conf.ReapInterval)
	defer purge.Stop()
	for {
		select {
		case <-c.stop:
			return
		case ev := <-c.events:
			c.handle(ev)
		case now := <-purge.C:
			c.purgeUnknown(now)
		}
	}
}

func (c *Cluster) handle(ev serf.Event) {
	now := time.Now()
	switch e := ev.(type) {
	case serf.MemberEvent:
		if e.Type == serf.EventMemberUpdate {
			c.updates.Add(int64(len(e.Members)))
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, sm := range e.Members {
			if e.Type == serf.EventMemberReap {
				if en := c.members[sm.Name]; en != nil && !en.known {
					c.unknown--
				}
				delete(c.members, sm.Name)
				continue
			}
			en := c.members[sm.Name]
			if en == nil {
				en = &entry{m: Member{Name: sm.Name}, known: true}
				c.members[sm.Name] = en
			} else if !en.known {
				// Its count (if any) is pending, not yet heard.
				en.known, en.m.UpdatedAt = true, time.Time{}
				c.unknown--
			}
			memberFromTags(&en.m, sm.Tags)
			en.m.Alive = sm.Status == serf.StatusAlive
			if key := decodeCountKey(sm.Tags[tagCountKey]); !key.Equal(en.key) {
				en.key, en.seq = key, 0
			}
			if e.Type == serf.EventMemberLeave || e.Type == serf.EventMemberFailed {
				// Gone: what it said about itself goes with it.
				en.m.Conns, en.m.UpdatedAt, en.seq, en.pending = 0, time.Time{}, 0, nil
			}
			if en.pending != nil && en.key != nil && en.m.Alive {
				c.applyCount(en, en.pending, now)
				en.pending = nil
			}
			if c.conf.CountMode == CountsTags {
				if n, ok := countFromTags(sm.Tags); ok && n != en.m.Conns {
					en.m.Conns, en.m.UpdatedAt = n, now
				}
			}
		}
	case serf.UserEvent:
		if e.Name != countEventName {
			return
		}
		msg, err := decodeCount(e.Payload)
		if err != nil {
			c.log.Debug("ignoring malformed count event", "err", err)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		en := c.members[msg.name]
		if en == nil {
			if c.unknown >= maxUnknownEntries {
				return
			}
			en = &entry{m: Member{Name: msg.name, UpdatedAt: now}}
			c.members[msg.name] = en
			c.unknown++
		}
		if !en.known || en.key == nil || !en.m.Alive {
			// Verified once serf tells us the member's key, applied once it
			// is alive (a count arriving after its departure means
			// nothing). The latest arrival waits; an older one is
			// superseded by the refresh.
			en.pending = append(en.pending[:0], e.Payload...)
			if !en.known {
				en.m.UpdatedAt = now // for purgeUnknown
			}
			return
		}
		c.applyCount(en, e.Payload, now)
	}
}

// applyCount applies a count payload to en if en's member signed it and it
// is newer than the last one applied. c.mu must be held.
func (c *Cluster) applyCount(en *entry, payload []byte, now time.Time) {
	msg, err := decodeCount(payload)
	if err != nil || msg.name != en.m.Name {
		return
	}
	if !msg.verify(en.key) {
		// Not signed by the member it names: another key holder, or a
		// count the member signed before it restarted with a new key.
		c.log.Debug("ignoring a count not signed by the member it names", "member", msg.name)
		return
	}
	if msg.seq <= en.seq {
		return // duplicate or overtaken by a newer count
	}
	en.seq = msg.seq
	en.m.Conns = msg.conns
	en.m.UpdatedAt = now
}

// purgeUnknown drops counts from members serf never reported (or already
// reaped), once they are older than the reconnect window.
func (c *Cluster) purgeUnknown(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, e := range c.members {
		if !e.known && now.Sub(e.m.UpdatedAt) > c.conf.ReconnectTimeout {
			delete(c.members, name)
			c.unknown--
		}
	}
}
