package ssmsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ManagedKeyAlias is the alias of the AWS managed key Parameter Store
// encrypts SecureString parameters with when PutParameter names no KeyId.
const ManagedKeyAlias = "alias/aws/ssm"

// kmsKey is one symmetric key of the fake KMS. Its material never leaves
// the emulator; ciphertexts name the key by ID, as KMS ciphertext blobs do.
type kmsKey struct {
	id      string // UUID
	arn     string
	aliases []string
	// managed keys (alias/aws/ssm) are usable by every principal of the
	// account through Parameter Store: their key policy says so, so IAM
	// need not allow kms:Decrypt (an explicit Deny still applies).
	// Customer managed keys need an IAM Allow.
	managed bool
	aead    cipher.AEAD
}

// Key describes a key of the fake KMS.
type Key struct {
	ID, ARN string
	Aliases []string
	Managed bool
}

func newKMSKey(region, account string, managed bool, aliases ...string) (*kmsKey, error) {
	var material [32]byte
	if _, err := rand.Read(material[:]); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(material[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return nil, err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return &kmsKey{
		id: id, arn: "arn:aws:kms:" + region + ":" + account + ":key/" + id,
		aliases: aliases, managed: managed, aead: aead,
	}, nil
}

func (k *kmsKey) snapshot() Key {
	return Key{ID: k.id, ARN: k.arn, Aliases: append([]string(nil), k.aliases...), Managed: k.managed}
}

// encrypt seals plaintext under the key, bound to the parameter's ARN as
// Parameter Store binds it (encryption context PARAMETER_ARN). The result is
// what GetParameter answers without WithDecryption: base64 of key ID, nonce
// and sealed value.
func (k *kmsKey) encrypt(plaintext, parameterARN string) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	blob := append([]byte(k.id), nonce...)
	blob = k.aead.Seal(blob, nonce, []byte(plaintext), []byte("PARAMETER_ARN="+parameterARN))
	return base64.StdEncoding.EncodeToString(blob), nil
}

// keyIDOf returns the key ID a ciphertext names.
func keyIDOf(ciphertext string) (string, []byte, error) {
	blob, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil || len(blob) < 36 {
		return "", nil, errors.New("malformed ciphertext")
	}
	return string(blob[:36]), blob[36:], nil
}

func (k *kmsKey) decrypt(rest []byte, parameterARN string) (string, error) {
	ns := k.aead.NonceSize()
	if len(rest) < ns {
		return "", errors.New("malformed ciphertext")
	}
	pt, err := k.aead.Open(nil, rest[:ns], rest[ns:], []byte("PARAMETER_ARN="+parameterARN))
	if err != nil {
		return "", errors.New("ciphertext does not verify under its key and encryption context")
	}
	return string(pt), nil
}

// resolveKeyLocked finds a key by ID, key ARN, alias name or alias ARN, as
// KMS accepts them in KeyId. The managed key is created on first use, as
// AWS creates alias/aws/ssm the first time a SecureString needs it.
func (s *Server) resolveKeyLocked(ref string) (*kmsKey, error) {
	if ref == "" || ref == ManagedKeyAlias || ref == "arn:aws:kms:"+s.cfg.Region+":"+s.cfg.AccountID+":"+ManagedKeyAlias {
		if s.managedKey == nil {
			k, err := newKMSKey(s.cfg.Region, s.cfg.AccountID, true, ManagedKeyAlias)
			if err != nil {
				return nil, err
			}
			s.managedKey = k
			s.keys[k.id] = k
		}
		return s.managedKey, nil
	}
	aliasPrefix := "arn:aws:kms:" + s.cfg.Region + ":" + s.cfg.AccountID + ":"
	name := strings.TrimPrefix(ref, aliasPrefix)
	name = strings.TrimPrefix(name, "key/")
	if k, ok := s.keys[name]; ok {
		return k, nil
	}
	for _, k := range s.keys {
		for _, a := range k.aliases {
			if a == name {
				return k, nil
			}
		}
	}
	return nil, errorf(codeInvalidKeyID, "Invalid keyId %s", ref)
}

// CreateKey adds a customer managed key to the fake KMS with the given
// aliases ("alias/wsdirect", ...), for PutParameter's KeyId. Principals need
// an IAM Allow for kms:Decrypt (and kms:Encrypt to write) on its ARN.
func (s *Server) CreateKey(aliases ...string) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range aliases {
		if !strings.HasPrefix(a, "alias/") || strings.HasPrefix(a, "alias/aws/") || len(a) <= len("alias/") {
			return Key{}, fmt.Errorf("ssmsim: alias %q must start with alias/ and not alias/aws/", a)
		}
		if _, err := s.resolveKeyLocked(a); err == nil {
			return Key{}, fmt.Errorf("ssmsim: alias %q exists", a)
		}
	}
	k, err := newKMSKey(s.cfg.Region, s.cfg.AccountID, false, aliases...)
	if err != nil {
		return Key{}, err
	}
	s.keys[k.id] = k
	return k.snapshot(), nil
}
