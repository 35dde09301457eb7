#!/usr/bin/env bash
# make demo: start a local 3-agent cluster on 127.0.0.2-4, apply
# examples/demo.yaml through one agent and read it back through the others.
# make demo-stop: stop the agents (data stays in .demo/ until removed).
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=./bin/shoal
DIR=.demo
IPS=(127.0.0.2 127.0.0.3 127.0.0.4)

stop() {
  for i in 1 2 3; do
    if [ -f "$DIR/n$i.pid" ]; then
      kill "$(cat "$DIR/n$i.pid")" 2>/dev/null || true
      rm -f "$DIR/n$i.pid"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then
  stop
  echo "demo agents stopped (data in $DIR/)"
  exit 0
fi

stop
mkdir -p "$DIR"
for i in 1 2 3; do
  ip=${IPS[$((i-1))]}
  "$SHOAL" agent --name "n$i" --bind "$ip" --data-dir "$DIR/n$i" \
    --bootstrap-expect 3 --join 127.0.0.2 >"$DIR/n$i.log" 2>&1 &
  echo $! >"$DIR/n$i.pid"
  echo "started agent n$i on $ip (log $DIR/n$i.log)"
done

echo "waiting for the cluster to elect a leader..."
for _ in $(seq 1 100); do
  if "$SHOAL" --server 127.0.0.3:7948 --timeout 2s get namespace default >/dev/null 2>&1; then break; fi
  sleep 0.2
done

run() { echo; echo "\$ shoal $*"; "$SHOAL" "$@"; }
run --server 127.0.0.2:7948 cluster members
run --server 127.0.0.3:7948 cluster raft
run --server 127.0.0.4:7948 apply -f examples/demo.yaml
run --server 127.0.0.2:7948 get configmaps -n demo -o wide
run --server 127.0.0.3:7948 describe configmap web-config -n demo
echo
echo "The cluster keeps running. Try: SHOAL_SERVER=127.0.0.3:7948 ./bin/shoal get ns"
echo "Stop it with: make demo-stop"
