//go:build !race

package portceiling

const raceEnabled = false
