// Package authsvc is the wsdirect auth service as a library: it checks a
// client's credentials (bcrypt users file, HTTP callback, or a bearer JWT
// verified against a JWKS), picks a node from the live cluster view with
// weighted power-of-two-choices plus pending accounting, and mints a
// short-lived connection token bound to that node (docs/design.md sections
// 1, 3, 5 and 6).
//
// A client that a node moved to rebalance the cluster says so in its
// connect request (reason "rebalance"): it goes to the least loaded node
// (Picker.PickLeastLoaded) and its token is marked (token.Claims.Rebalanced)
// so that node does not move it again (docs/design.md section 15).
//
// The Server is stateless apart from the pending assignments its Picker
// remembers, so any number of auth instances can run side by side; they
// share nothing but the gossip view of the nodes.
//
// Brute force: only failed logins count. A per-client-IP token bucket
// (golang.org/x/time/rate) is checked before the credentials, and a check
// that runs bcrypt holds one unit of the bucket while it runs (loginGate):
// only as many run at once as the bucket has whole units, a success gives
// its unit back and a failure keeps it. So N wrong passwords sent at once
// from one address run at most LoginBurst bcrypts, the rest are answered 429
// before any work, and over time an attacker gets at most LoginRate guesses
// per second plus the burst. Successful logins are never limited; a burst of
// first logins from one address (a NAT) larger than LoginBurst is answered
// 429 beyond the burst and succeeds on retry. Malformed requests, backend
// outages and "no capacity" answers are not charged.
//
// Hoarding: a user may hold at most MaxUserTokens tokens that no node has
// counted yet (userTokens), so one user's unused tokens cannot make the
// cluster look full to everybody else; nodes cap each user's open
// connections (node.Config.MaxConnsPerUser).
//
// Key rotation: generate a new pair (wsdirect-auth keygen), append the new
// public key to every node's -auth-keys file (or drop it in the key
// directory) and SIGHUP the nodes; then point the auth instances'
// -signing-key at the new private key and SIGHUP them (Server.SetSigner).
// Once the old tokens have expired (token TTL, 30 s by default), remove the
// old public key from the nodes and SIGHUP them again.
package authsvc
