package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the gossip key length required outside Dev mode (AES-256).
const KeySize = 32

// EncodeKey renders a gossip key the way key files store it: standard
// base64 (the format of `serf keygen` and `consul keygen`).
func EncodeKey(key []byte) string {
	return base64.StdEncoding.EncodeToString(key)
}

// DecodeKey parses a base64 gossip key and checks its length (16, 24 or 32
// bytes; Create additionally requires 32 outside Dev mode).
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("gossip key is empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key is not valid base64: %w", err)
	}
	if err := checkKeyLen(key); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadKeyFile reads a base64 gossip key file, as written by
// `wsdirect-auth keygen` (gossip.key). Surrounding whitespace is ignored.
func LoadKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gossip key file: %w", err)
	}
	key, err := DecodeKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return key, nil
}

func checkKeyLen(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	default:
		return fmt.Errorf("gossip key must be 16, 24 or 32 bytes (AES-128/192/256), got %d", len(key))
	}
}
