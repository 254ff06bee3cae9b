package cluster

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// countEventName is the serf user-event name carrying connection counts.
// Short, because the name is gossiped with every event.
const countEventName = "wsd.c"

// countPayloadVersion 2 is signed; version 1 (unsigned) is refused.
const countPayloadVersion = 2

// countSigContext separates count signatures from any other use of a
// member's count key.
const countSigContext = "wsdirect count v2\x00"

// countMsg is one published connection count. User events carry no sender
// (serf relays them from member to member), and every member holds the
// cluster's gossip key, so the payload says whose count it is and proves it:
// it is signed with the member's own count key, an Ed25519 key each process
// makes at start and publishes in its tags (tagCountKey). A member holding
// the gossip key can still send a count under another member's name, but no
// one accepts it.
//
// Seq orders a member's counts: gossip may deliver them out of order or
// twice, and only the newest wins. Seq starts at the member's start time in
// microseconds; a restarted member has a new key anyway, which resets the
// order (see entry).
type countMsg struct {
	name  string
	seq   uint64
	conns int
}

// countSigSize is the signature appended to every count.
const countSigSize = ed25519.SignatureSize

// encode renders: version byte, uvarint seq, uvarint conns, name bytes,
// then the signature over countSigContext and everything before it. At most
// 1+10+10+MaxNameLen+64 = 213 bytes, under serf's 512.
func (c countMsg) encode(key ed25519.PrivateKey) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.name)+countSigSize)
	b = append(b, countPayloadVersion)
	b = binary.AppendUvarint(b, c.seq)
	b = binary.AppendUvarint(b, uint64(c.conns))
	b = append(b, c.name...)
	return append(b, ed25519.Sign(key, countSigned(b))...)
}

func countSigned(body []byte) []byte {
	return append([]byte(countSigContext), body...)
}

// signedCount is a decoded count whose signature is not checked yet.
type signedCount struct {
	countMsg
	body, sig []byte
}

// verify checks the signature with the member's count key.
func (s signedCount) verify(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, countSigned(s.body), s.sig)
}

func decodeCount(b []byte) (signedCount, error) {
	var s signedCount
	if len(b) == 0 || b[0] != countPayloadVersion {
		return s, errors.New("count event: unknown payload version")
	}
	if len(b) < 1+countSigSize {
		return s, errors.New("count event: too short")
	}
	s.body, s.sig = b[:len(b)-countSigSize], b[len(b)-countSigSize:]
	rest := s.body[1:]
	seq, n := binary.Uvarint(rest)
	if n <= 0 {
		return s, errors.New("count event: bad seq")
	}
	rest = rest[n:]
	conns, n := binary.Uvarint(rest)
	if n <= 0 || conns > 1<<31 {
		return s, errors.New("count event: bad conns")
	}
	rest = rest[n:]
	if len(rest) == 0 || len(rest) > MaxNameLen {
		return s, fmt.Errorf("count event: bad member name length %d", len(rest))
	}
	s.countMsg = countMsg{name: string(rest), seq: seq, conns: int(conns)}
	return s, nil
}

// encodeCountKey and decodeCountKey render a count key for tags.
func encodeCountKey(pub ed25519.PublicKey) string {
	return base64.RawStdEncoding.EncodeToString(pub)
}

func decodeCountKey(s string) ed25519.PublicKey {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil
	}
	return ed25519.PublicKey(b)
}
