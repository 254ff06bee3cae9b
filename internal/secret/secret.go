// Package secret is where the commands get their secrets and where bearer
// secrets are compared.
//
// Read is the one place that turns a secret flag's value into the secret:
// today the value is a file path (-admin-token-file, -gossip-key-file). A
// new kind of reference (a parameter store, say) is added here, and every
// secret flag accepts it at once.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// Read returns the secret that ref points at, with surrounding whitespace
// (a trailing newline from echo or an editor) removed. ref is a file path.
// flagName ("-admin-token-file") is named in every error, so the operator
// knows which flag to fix; the secret itself never appears in an error.
func Read(flagName, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%s: no file given", flagName)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", flagName, ref)
	}
	return s, nil
}

// Equal reports whether the presented secret got matches want, in time that
// depends on neither secret's content nor length: both are hashed with
// SHA-256 and the digests compared in constant time. An empty want never
// matches, so an unset secret cannot be met by an empty one.
func Equal(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
