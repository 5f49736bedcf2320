module github.com/signalbox-io/signalbox/scripts/wscandidates

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/lesismal/nbio v1.6.8
	github.com/signalbox-io/signalbox v0.0.0
)

require (
	github.com/lesismal/llib v1.2.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/signalbox-io/signalbox => ../..
