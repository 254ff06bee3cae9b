//go:build race

package portceiling

// raceEnabled: the race detector allows at most 8,128 live goroutines,
// and the client keeps one per held connection.
const raceEnabled = true
