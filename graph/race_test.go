//go:build race

package graph_test

// raceEnabled reports a build with the race detector, whose shadow memory
// makes every allocation cost several times its size in RSS.
const raceEnabled = true
