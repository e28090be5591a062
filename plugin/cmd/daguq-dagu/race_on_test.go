//go:build race

package main

// raceEnabled: Dagu's Run.Stop races with the agent's setup (see README.md).
const raceEnabled = true
