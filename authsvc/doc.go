// Package authsvc is the wsdirect auth service as a library: it checks a
// client's credentials (bcrypt users file, HTTP callback, or a bearer JWT
// verified against a JWKS), picks a node from the live cluster view with
// weighted power-of-two-choices plus pending accounting, and mints a
// short-lived connection token bound to that node (docs/design.md sections
// 1, 3, 5 and 6).
//
// The Server is stateless apart from the pending assignments its Picker
// remembers, so any number of auth instances can run side by side; they
// share nothing but the gossip view of the nodes.
//
// Brute force: only failed logins count. A per-client-IP token bucket
// (golang.org/x/time/rate) is checked before the credentials, and a failure
// is charged after the check, allowing the bucket to go into debt. So a
// reconnect storm of legitimate clients behind one NAT address is never
// throttled, while an attacker gets at most LoginRate guesses per second
// plus LoginBurst, however many guesses they send concurrently: guesses
// already in flight when the budget ran out are paid back before the next
// one is allowed. Malformed requests, backend outages and "no capacity"
// answers are not charged.
//
// Key rotation: generate a new pair (wsdirect-auth keygen), append the new
// public key to every node's -auth-keys file (or drop it in the key
// directory) and SIGHUP the nodes; then point the auth instances'
// -signing-key at the new private key and SIGHUP them (Server.SetSigner).
// Once the old tokens have expired (token TTL, 30 s by default), remove the
// old public key from the nodes and SIGHUP them again.
package authsvc
