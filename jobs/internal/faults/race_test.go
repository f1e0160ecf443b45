//go:build race

package faults_test

func init() { raceEnabled = true }
