// Package token is the connection token: an Ed25519-signed JWT (EdDSA) that
// the auth service mints for one user and one node, and that the node checks
// offline before upgrading a WebSocket.
//
// The auth service holds the only private key; nodes hold public keys in a
// KeySet indexed by key id (kid), so keys rotate by publishing the new public
// key to nodes before auth starts signing with it. Each token is single use:
// the Verifier remembers every jti it accepted until that token expires.
package token
