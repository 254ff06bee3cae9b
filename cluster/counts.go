package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// countEventName is the serf user-event name carrying connection counts.
// Short, because the name is gossiped with every event.
const countEventName = "wsd.c"

const countPayloadVersion = 1

// countMsg is one published connection count. User events carry no sender,
// so the member name travels in the payload. Seq orders a member's counts:
// gossip may deliver them out of order or twice, and only the newest wins.
// Seq starts at the member's start time in microseconds, so a restarted
// member (same name, new process) outranks what it published before.
type countMsg struct {
	name  string
	seq   uint64
	conns int
}

// encode renders: version byte, uvarint seq, uvarint conns, name bytes.
// At most 1+10+10+MaxNameLen = 149 bytes, well under serf's 512.
func (c countMsg) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.name))
	b = append(b, countPayloadVersion)
	b = binary.AppendUvarint(b, c.seq)
	b = binary.AppendUvarint(b, uint64(c.conns))
	return append(b, c.name...)
}

func decodeCount(b []byte) (countMsg, error) {
	var c countMsg
	if len(b) == 0 || b[0] != countPayloadVersion {
		return c, errors.New("count event: unknown payload version")
	}
	b = b[1:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return c, errors.New("count event: bad seq")
	}
	b = b[n:]
	conns, n := binary.Uvarint(b)
	if n <= 0 || conns > 1<<31 {
		return c, errors.New("count event: bad conns")
	}
	b = b[n:]
	if len(b) == 0 || len(b) > MaxNameLen {
		return c, fmt.Errorf("count event: bad member name length %d", len(b))
	}
	return countMsg{name: string(b), seq: seq, conns: int(conns)}, nil
}
