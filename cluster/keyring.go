package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// DecodeKeys parses the content of a gossip key file or parameter: one or
// more base64 keys separated by white space or commas. The first is the
// primary key, the one this member encrypts with; all of them decrypt.
// Listing two keys is how a cluster changes its key without splitting (see
// SetKeys).
func DecodeKeys(s string) ([][]byte, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n' })
	if len(fields) == 0 {
		return nil, errors.New("gossip key is empty")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		k, err := DecodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("key %d of %d: %w", i+1, len(fields), err)
		}
		for _, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("key %d of %d is listed twice", i+1, len(fields))
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// checkExtraKeys validates Config.ExtraKeys as Create validates SecretKey.
func checkExtraKeys(extra [][]byte, dev bool) ([][]byte, error) {
	out := make([][]byte, 0, len(extra))
	for i, k := range extra {
		if err := checkKeyLen(k); err != nil {
			return nil, fmt.Errorf("cluster: ExtraKeys[%d]: %w", i, err)
		}
		if !dev && len(k) != KeySize {
			return nil, fmt.Errorf("cluster: ExtraKeys[%d] must be %d bytes (AES-256) outside Dev mode, got %d", i, KeySize, len(k))
		}
		out = append(out, append([]byte(nil), k...))
	}
	return out, nil
}

// SetKeys makes the gossip keyring hold exactly keys: keys[0] becomes the
// key this member encrypts with, and messages under any of them are
// accepted. The keyring stays usable at every step, so gossip never stops.
//
// A cluster changes its key in three rounds, reloading every member after
// each (SIGHUP re-reads the key file or parameter):
//
//  1. "OLD NEW": every member learns NEW and still sends with OLD;
//  2. "NEW OLD": members send with NEW, which all of them can read;
//  3. "NEW": OLD is forgotten.
//
// Replacing OLD by NEW in one step works too, but until every member has
// reloaded, the reloaded and the others cannot hear each other.
func (c *Cluster) SetKeys(keys [][]byte) error {
	if c.keyring == nil {
		return errors.New("cluster: gossip is not encrypted (Dev mode without a key); restart with a key to encrypt it")
	}
	if len(keys) == 0 {
		return errors.New("cluster: SetKeys needs at least one key")
	}
	if err := checkKeyLen(keys[0]); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if !c.conf.Dev && len(keys[0]) != KeySize {
		return fmt.Errorf("cluster: gossip key must be %d bytes (AES-256) outside Dev mode, got %d", KeySize, len(keys[0]))
	}
	extra, err := checkExtraKeys(keys[1:], c.conf.Dev)
	if err != nil {
		return err
	}
	want := append([][]byte{append([]byte(nil), keys[0]...)}, extra...)
	// Add everything, switch the primary, then drop what is not wanted:
	// each step leaves a keyring that reads both old and new traffic.
	for _, k := range want {
		if err := c.keyring.AddKey(k); err != nil {
			return fmt.Errorf("cluster: gossip keyring: %w", err)
		}
	}
	if err := c.keyring.UseKey(want[0]); err != nil {
		return fmt.Errorf("cluster: gossip keyring: %w", err)
	}
	var drop [][]byte
	for _, have := range c.keyring.GetKeys() {
		keep := false
		for _, k := range want {
			keep = keep || bytes.Equal(have, k)
		}
		if !keep {
			drop = append(drop, append([]byte(nil), have...))
		}
	}
	for _, k := range drop {
		if err := c.keyring.RemoveKey(k); err != nil {
			return fmt.Errorf("cluster: gossip keyring: %w", err)
		}
	}
	c.log.Info("gossip keys set", "keys", len(want))
	return nil
}

// KeyCount is how many keys the gossip keyring holds (0 without
// encryption).
func (c *Cluster) KeyCount() int {
	if c.keyring == nil {
		return 0
	}
	return len(c.keyring.GetKeys())
}
