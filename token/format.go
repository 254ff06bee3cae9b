package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
)

// The only header values a Signer writes and a Verifier accepts.
const (
	algEdDSA = "EdDSA"
	typJWT   = "JWT"
)

// b64 is unpadded base64url that refuses non-canonical encodings (set
// padding bits), so that one token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// header is the JOSE header of a connection token.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// wireClaims is the claims object as it travels (see Claims).
type wireClaims struct {
	Sub string  `json:"sub"`
	Aud string  `json:"aud"`
	Exp int64   `json:"exp"`
	Nbf int64   `json:"nbf"`
	Iat float64 `json:"iat"`
	Jti string  `json:"jti"`
	// Rb is present, and true, only in the token of a client that a node
	// moved to rebalance the cluster (Claims.Rebalanced).
	Rb trueOnly `json:"rb,omitzero"`
}

// trueOnly is a claim that is either absent or exactly true: a Signer
// never writes false or null, so a Verifier refuses them, and one token has
// one spelling.
type trueOnly bool

// UnmarshalJSON accepts only the JSON literal true.
func (t *trueOnly) UnmarshalJSON(b []byte) error {
	if string(b) != "true" {
		return errors.New("must be true when present")
	}
	*t = true
	return nil
}

// strictJSON decodes like encoding/json/v2's defaults, which already refuse
// duplicate object names and invalid UTF-8, and in addition refuses members
// the struct does not name. Names match exactly (no case folding), and a
// JSON string never decodes into a number.
var strictJSON = json.RejectUnknownMembers(true)

// sign renders and signs a token.
func sign(key ed25519.PrivateKey, h header, c wireClaims) (string, error) {
	hj, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	cj, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	input := b64.EncodeToString(hj) + "." + b64.EncodeToString(cj)
	return input + "." + b64.EncodeToString(ed25519.Sign(key, []byte(input))), nil
}

// parsed is a token split into its parts, the signature checked by the
// caller.
type parsed struct {
	header header
	input  string // header.claims, the signed bytes
	claims []byte // decoded claims JSON, not yet trusted
	sig    []byte
}

// split decodes a token's three parts and its header. Every failure is
// ReasonMalformed except a header naming another algorithm, which is
// ReasonBadSignature (alg "none" and HS256 confusion: not signed by us).
func split(raw string) (*parsed, *Error) {
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	if i < 0 || i == j || strings.IndexByte(raw[i+1:j], '.') >= 0 {
		return nil, malformed("want three dot-separated parts")
	}
	hj, err := b64.DecodeString(raw[:i])
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hj, &h, strictJSON); err != nil {
		return nil, malformed("header: " + err.Error())
	}
	if h.Alg != algEdDSA {
		return nil, &Error{Reason: ReasonBadSignature, Err: fmt.Errorf("alg %q is not %s", h.Alg, algEdDSA)}
	}
	if h.Typ != typJWT {
		return nil, malformed(fmt.Sprintf("typ %q is not %s", h.Typ, typJWT))
	}
	cj, err := b64.DecodeString(raw[i+1 : j])
	if err != nil {
		return nil, malformed("claims are not base64url")
	}
	sig, err := b64.DecodeString(raw[j+1:])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, &Error{Reason: ReasonBadSignature, Err: errors.New("signature is not 64 bytes of base64url")}
	}
	return &parsed{header: h, input: raw[:j], claims: cj, sig: sig}, nil
}

// Bounds on what a Signer mints; anything outside them did not come from
// one.
const (
	maxSubjectBytes = 1024
	jtiHexLen       = 32
	// maxUnix keeps times far inside time.Time's and float64's exact range.
	maxUnix = 1 << 40
)

// decodeClaims parses signed claims strictly: every member present, of its
// type, with no other member, and consistent the way Mint makes them.
func decodeClaims(data []byte) (*Claims, *Error) {
	var c wireClaims
	if err := json.Unmarshal(data, &c, strictJSON); err != nil {
		return nil, malformed("claims: " + err.Error())
	}
	switch {
	case c.Sub == "" || len(c.Sub) > maxSubjectBytes:
		return nil, malformed("sub missing or too long")
	case c.Aud == "":
		return nil, malformed("aud missing")
	case !isLowerHex(c.Jti, jtiHexLen):
		return nil, malformed("jti is not 32 lowercase hex digits")
	case c.Nbf <= 0 || c.Nbf > maxUnix || c.Exp <= c.Nbf || c.Exp > maxUnix:
		return nil, malformed("nbf or exp missing or out of order")
	case math.IsNaN(c.Iat) || c.Iat < float64(c.Nbf) || c.Iat >= float64(c.Nbf+1):
		// Mint sets nbf to iat rounded down to the second.
		return nil, malformed("iat missing or not within nbf's second")
	}
	return &Claims{
		Subject:    c.Sub,
		Audience:   c.Aud,
		ID:         c.Jti,
		IssuedAt:   time.UnixMilli(int64(math.Round(c.Iat * 1000))),
		NotBefore:  time.Unix(c.Nbf, 0),
		ExpiresAt:  time.Unix(c.Exp, 0),
		Rebalanced: bool(c.Rb),
	}, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func malformed(msg string) *Error {
	return &Error{Reason: ReasonMalformed, Err: errors.New(msg)}
}
