// Package bench is the load generator behind `signalbox bench`: it starts a Signalbox
// server as a child process (so that its CPU time and RSS are measured apart from the
// load generator), connects SignalR WebSocket clients (package client) over loopback,
// runs one scenario — broadcast (S1), upstream invocations (S2), REST sends (S3), idle
// connections (S4), as README.md describes them — and reports one Result per scenario
// in the shape `signalbox bench --json` promises (README.md, "signalbox bench"). The
// REST scenario's callers and receivers are lighter than package client and net/http
// (rest.go, rawws.go: a wrk-like caller and raw WebSocket receivers), so that the load
// generator does not take the CPU the server is measured on.
//
// Every run is bounded in time and count and stops by itself: clients are closed,
// the child processes are stopped (SIGTERM, then SIGKILL) and waited for. The raw
// floor of performance.md section 3 (a bare coder/websocket server writing the same
// frames, one write per frame, to the same number of connections as fast as it can)
// is measured in the same run, in a second child process, and each broadcast result
// is reported as a fraction of it.
package bench
