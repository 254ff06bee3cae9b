// Package token is the connection token: an Ed25519-signed JWT (EdDSA) that
// the auth service mints for one user and one node, and that the node checks
// offline before upgrading a WebSocket.
//
// The auth service holds the only private key; nodes hold public keys in a
// KeySet indexed by key id (kid), so keys rotate by publishing the new public
// key to nodes before auth starts signing with it. Each token is single use:
// the Verifier remembers every jti it accepted until that token expires, and
// refuses tokens issued before it started (RejectIssuedBefore), so a token
// used before a node restart cannot be used again after it.
//
// The verifier is strict: it accepts exactly the format the Signer mints
// (see Claims) and nothing looser. A JWT library's lenient parsing (aud as
// an array, numbers as strings, duplicate keys where the last one wins,
// invalid UTF-8 replaced silently) is harmless only while the signing key is
// safe; the verifier is the last line of defence when it is not.
package token
