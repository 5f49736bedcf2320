// Package soak holds the long-run test of the service (issue 7, T9): thousands of
// connections of every transport with steady traffic and churn for minutes, then the
// server's goroutines, open files and heap must come back to their baseline. The test
// runs only when SIGNALBOX_SOAK gives its duration (`make soak`); see docs/reliability.md.
package soak
