#!/bin/bash
# The WebSocket server candidates of issue 8 side by side (docs/dependencies.md):
# idle RSS per connection at 10,000 connections, and CPU per delivery of a broadcast
# to 2,000 connections 25 times a second for 10 s. Loopback only; each run starts
# and stops its own server and client. Usage: scripts/wscandidates/run.sh [runs]
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-3}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for v in client nbio coder ours; do go build -o "$bin/$v" "./$v"; done

one() { # variant mode
	local v=$1 mode=$2 extra="" n=2000
	[ "$v" = ours-gathered ] && extra=gathered
	[ "$mode" = idle ] && n=10000
	"$bin/${v%-gathered}" 127.0.0.1:9001 127.0.0.1:9002 $extra >/dev/null 2>&1 &
	local sp=$!
	for _ in $(seq 50); do curl -sf 127.0.0.1:9002/rss >/dev/null && break; sleep 0.1; done
	local base; base=$(curl -s 127.0.0.1:9002/rss | cut -d' ' -f1)
	"$bin/client" 127.0.0.1:9001 $n >"$bin/ready" 2>&1 &
	local cp=$!
	for _ in $(seq 120); do grep -q ready "$bin/ready" && break; sleep 0.5; done
	if [ "$mode" = idle ]; then
		sleep 10 # the collector settles
		read -r r c < <(curl -s 127.0.0.1:9002/rss)
		echo "$v idle: $c connections, $(( (r - base) / c )) B RSS per connection"
	else
		sleep 2
		echo "$v fan-out: $(curl -s '127.0.0.1:9002/fanout?rate=25&dur=10s')"
	fi
	kill $cp $sp; wait $cp $sp 2>/dev/null || true
}

for _ in $(seq "$runs"); do
	for v in coder nbio ours; do one $v idle; done
	for v in coder nbio ours ours-gathered; do one $v fanout; done
done
