package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// KeyID derives a key id from a public key, so the id never disagrees with
// the key it names and needs no separate bookkeeping during rotation.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// KeySet maps key ids to the public keys a node trusts.
type KeySet map[string]ed25519.PublicKey

// Add trusts pub under its derived key id.
func (ks KeySet) Add(pub ed25519.PublicKey) string {
	kid := KeyID(pub)
	ks[kid] = pub
	return kid
}

// IDs lists the key ids in the set, sorted.
func (ks KeySet) IDs() []string {
	ids := make([]string, 0, len(ks))
	for id := range ks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// GenerateKey makes a new Ed25519 signing key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// EncodePrivateKey returns priv as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodePrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey returns pub as a PKIX "PUBLIC KEY" PEM block.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads the first PEM block of data as an Ed25519 PKCS#8 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an Ed25519 key", key)
	}
	return priv, nil
}

// ParsePublicKeys reads every "PUBLIC KEY" PEM block in data. A file may hold
// several keys, which is how a node trusts the current and the next signing
// key during rotation.
func ParsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want an Ed25519 key", key)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PUBLIC KEY PEM block found")
	}
	return keys, nil
}

// LoadPrivateKey reads an Ed25519 private key PEM file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// LoadKeySet reads public keys from each path. A path may be a PEM file with
// one or more keys, or a directory whose *.pem and *.pub files are read.
func LoadKeySet(paths ...string) (KeySet, error) {
	ks := KeySet{}
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err != nil {
			return nil, err
		} else if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range entries {
				if !e.IsDir() && (strings.HasSuffix(e.Name(), ".pem") || strings.HasSuffix(e.Name(), ".pub")) {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			keys, err := ParsePublicKeys(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for _, k := range keys {
				ks.Add(k)
			}
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("no public keys found")
	}
	return ks, nil
}

// WriteKeyPair writes priv to privPath (mode 0600) and its public key to
// pubPath (mode 0644). It refuses to overwrite an existing private key, since
// losing a signing key in use would log every client out.
func WriteKeyPair(privPath, pubPath string, priv ed25519.PrivateKey) error {
	privPEM, err := EncodePrivateKey(priv)
	if err != nil {
		return err
	}
	pubPEM, err := EncodePublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(privPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// The umask can only take bits away from 0600 (leaving 0400, say); set
	// the mode outright.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(privPath)
		return err
	}
	if _, err := f.Write(privPEM); err != nil {
		f.Close()
		os.Remove(privPath)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(privPath)
		return err
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}
