// Package balance measures how evenly each assignment strategy spreads
// a burst of clients over the nodes when every auth instance decides from
// stale gossiped counts, and draws the result as a PNG for
// docs/benchmarks.md.
//
// It drives SimulateBurst (with the same authsvc.Picker code the auth
// service runs) for every strategy and several arrival rates, and rebuilds
// the course of each burst from prefix runs: the simulation is deterministic
// for a given seed, so a burst of k assignments is exactly the first k
// assignments of a longer burst with the same rate and cap.
//
// cmd/wsdirect-plot is the command that writes docs/img/balance.png and
// prints the table that goes next to it.
package balance
