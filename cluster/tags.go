package cluster

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// Tag keys are one letter: serf tags share memberlist's 512-byte node
// metadata with nothing else, but every byte is gossiped in every alive
// message.
const (
	tagVersion  = "v" // tag schema version, so later versions can change meaning
	tagRole     = "r"
	tagAddr     = "a"
	tagPort     = "p"
	tagCap      = "c"
	tagZone     = "z"
	tagDraining = "d" // "1" when draining, absent otherwise
	tagScheme   = "s" // "wss" for TLS; absent means "ws" (members older than the tag)
	tagNotReady = "u" // "1" while not ready (no certificate yet), absent otherwise
	tagConns    = "n" // only in CountsTags mode
	tagCountKey = "k" // the key the node's counts are signed with (counts.go)

	tagSchema = "1"
)

// MaxTagBytes is serf's limit on the encoded tags of one member.
const MaxTagBytes = memberlist.MetaMaxSize

// MaxNameLen bounds member names (serf's own validation limit).
const MaxNameLen = 128

// staticFacts are the tag-borne facts of the local member.
type staticFacts struct {
	role     Role
	addr     string
	port     int
	scheme   string
	cap      int
	zone     string
	draining bool
	notReady bool
	countKey string // encoded public count key; nodes only
}

func (f staticFacts) tags(mode CountMode, conns int) map[string]string {
	t := map[string]string{
		tagVersion: tagSchema,
		tagRole:    string(f.role),
	}
	if f.role == RoleNode {
		t[tagAddr] = f.addr
		t[tagPort] = strconv.Itoa(f.port)
		t[tagCap] = strconv.Itoa(f.cap)
		if f.scheme != "ws" {
			t[tagScheme] = f.scheme
		}
		if f.countKey != "" {
			t[tagCountKey] = f.countKey
		}
	}
	if f.zone != "" {
		t[tagZone] = f.zone
	}
	if f.draining {
		t[tagDraining] = "1"
	}
	if f.notReady {
		t[tagNotReady] = "1"
	}
	if mode == CountsTags {
		t[tagConns] = strconv.Itoa(conns)
	}
	return t
}

// encodedTagSize is the size serf will gossip for tags: a magic byte plus
// the msgpack-encoded map (the same encoding serf uses).
func encodedTagSize(tags map[string]string) (int, error) {
	var buf bytes.Buffer
	buf.WriteByte(0xff) // serf's tagMagicByte
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(tags); err != nil {
		return 0, err
	}
	return buf.Len(), nil
}

// checkTags errors when tags exceed MaxTagBytes. The count tag of
// CountsTags mode, the count key and the draining and not-ready flags are
// sized at their widest so the tags can never overflow later.
func checkTags(f staticFacts, mode CountMode) error {
	// At their widest: the flags that come and go are counted as set.
	f.draining, f.notReady = true, true
	if f.role == RoleNode {
		f.countKey = strings.Repeat("k", 43) // base64 of 32 bytes, unpadded
	}
	n, err := encodedTagSize(f.tags(mode, -1<<31))
	if err != nil {
		return fmt.Errorf("encode tags: %w", err)
	}
	if n > MaxTagBytes {
		return fmt.Errorf("cluster tags are %d bytes encoded, limit is %d: shorten the public address or zone", n, MaxTagBytes)
	}
	return nil
}

// memberFromTags fills the tag-borne fields of m.
func memberFromTags(m *Member, tags map[string]string) {
	m.Role = Role(tags[tagRole])
	m.Addr = tags[tagAddr]
	m.Port, _ = strconv.Atoi(tags[tagPort])
	m.Cap, _ = strconv.Atoi(tags[tagCap])
	m.Zone = tags[tagZone]
	m.Draining = tags[tagDraining] == "1"
	m.NotReady = tags[tagNotReady] == "1"
	m.Scheme = tags[tagScheme]
	if m.Scheme == "" && m.Role == RoleNode {
		m.Scheme = "ws"
	}
}

// countFromTags returns the CountsTags-mode count, if present.
func countFromTags(tags map[string]string) (int, bool) {
	v, ok := tags[tagConns]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

// normalizeFacts trims and validates the identity part of a Config.
func normalizeFacts(c *Config) (staticFacts, error) {
	f := staticFacts{
		role:     c.Role,
		addr:     strings.TrimSpace(c.PublicAddr),
		port:     c.WSPort,
		scheme:   c.WSScheme,
		cap:      c.Cap,
		zone:     strings.TrimSpace(c.Zone),
		draining: c.Draining,
		notReady: c.NotReady,
	}
	switch f.role {
	case RoleNode:
		if f.addr == "" {
			return f, fmt.Errorf("cluster: PublicAddr is required for role %q (the address clients dial)", f.role)
		}
		if f.port <= 0 || f.port > 65535 {
			return f, fmt.Errorf("cluster: WSPort %d out of range 1-65535", f.port)
		}
		if f.cap <= 0 {
			return f, fmt.Errorf("cluster: Cap must be > 0 for role %q, got %d", f.role, f.cap)
		}
		if f.scheme != "ws" && f.scheme != "wss" {
			return f, fmt.Errorf("cluster: WSScheme %q: want \"wss\" or \"ws\"", f.scheme)
		}
	case RoleAuth:
		f.addr, f.port, f.cap, f.scheme = "", 0, 0, ""
	default:
		return f, fmt.Errorf("cluster: Role %q is not %q or %q", f.role, RoleNode, RoleAuth)
	}
	return f, checkTags(f, c.CountMode)
}
