package authsvc

import (
	"errors"
	"strings"
)

// MaxPasswordBytes is the longest password bcrypt holds exactly.
const MaxPasswordBytes = 72

// ErrPasswordUnrepresentable marks a password that bcrypt cannot hold
// exactly, so that some other password would check as equal to it.
var ErrPasswordUnrepresentable = errors.New("password cannot be held exactly by bcrypt")

// CheckPassword reports whether bcrypt holds password exactly, so that no
// other password checks as equal to it. Two rules follow from how
// golang.org/x/crypto/bcrypt (like every bcrypt) feeds the password to the
// Blowfish key schedule: it appends one NUL byte as a terminator, and the key
// schedule reads the resulting key cyclically for exactly 72 bytes.
//
//   - Nothing past byte 72 is ever read, so a 72-byte password P checks equal
//     to P followed by anything. GenerateFromPassword refuses more than 72
//     bytes, but CompareHashAndPassword does not: a login must be refused by
//     length, not left to bcrypt.
//   - A NUL inside the password collides with the terminator: the key of
//     "s3cret\x00s3cret" is "s3cret\x00s3cret\x00", which read cyclically is
//     the same byte stream as "s3cret\x00" repeated, the key of "s3cret". So
//     that login succeeded for the user whose password is "s3cret".
//
// With no NUL and at most 72 bytes, the cyclic stream of P+NUL determines P
// (its first NUL ends P, or there is none and P is all 72 bytes), so distinct
// such passwords never check as equal. An empty password is refused as well.
func CheckPassword(password string) error {
	switch {
	case password == "":
		return errors.Join(ErrPasswordUnrepresentable, errors.New("empty password"))
	case len(password) > MaxPasswordBytes:
		return errors.Join(ErrPasswordUnrepresentable, errors.New("password longer than 72 bytes (bcrypt reads no further)"))
	case strings.IndexByte(password, 0) >= 0:
		return errors.Join(ErrPasswordUnrepresentable, errors.New("password contains a NUL byte (bcrypt takes it for the end)"))
	}
	return nil
}
