//go:build !race

package main

// raceEnabled reports a build with the race detector, whose shadow memory
// makes every allocation cost several times its size in RSS.
const raceEnabled = false
