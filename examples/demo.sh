#!/usr/bin/env bash
# make demo: start a local 3-agent cluster on 127.0.0.2-4, apply
# examples/demo.yaml through one agent and read it back through the others,
# then run examples/web.yaml and the examples/hello.yaml service.
# make demo-stop: stop the agents (data stays in .demo/ until removed).
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=./bin/shoal
# Pods of the process runtime run shoal-testapp from the agents' PATH.
export PATH="$PWD/bin:$PATH"
DIR=.demo
IPS=(127.0.0.2 127.0.0.3 127.0.0.4)

stop() {
  if [ -f "$DIR/n1.pid" ] && kill -0 "$(cat "$DIR/n1.pid")" 2>/dev/null; then
    # Delete the workload first so its processes stop with their pods.
    "$SHOAL" --server 127.0.0.2:7948 --timeout 5s delete deployment web --ignore-not-found >/dev/null 2>&1 || true
    "$SHOAL" --server 127.0.0.2:7948 --timeout 5s delete service web --ignore-not-found >/dev/null 2>&1 || true
    "$SHOAL" --server 127.0.0.2:7948 --timeout 5s delete -f examples/hello.yaml --ignore-not-found >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      [ -z "$("$SHOAL" --server 127.0.0.2:7948 --timeout 2s get pods -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
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
run --server 127.0.0.2:7948 apply -f examples/web.yaml
echo
echo "waiting for 6 Ready pods..."
for _ in $(seq 1 150); do
  ready=$("$SHOAL" --server 127.0.0.2:7948 get deployment web 2>/dev/null | awk 'NR==2 {print $2}')
  [ "$ready" = "6/6" ] && break
  sleep 0.2
done
run --server 127.0.0.4:7948 get deployments
run --server 127.0.0.4:7948 get pods -o wide
run --server 127.0.0.3:7948 get nodes -o wide
run --server 127.0.0.2:7948 apply -f examples/hello.yaml
echo
echo "waiting for the hello service's 3 Ready endpoints..."
for _ in $(seq 1 150); do
  n=$("$SHOAL" --server 127.0.0.2:7948 get pods -l app=hello 2>/dev/null | grep -c ' 1/1 .*Running' || true)
  [ "$n" = "3" ] && break
  sleep 0.2
done
run --server 127.0.0.3:7948 get services
run --server 127.0.0.3:7948 get endpoints hello
ip=$(dig @127.0.0.2 +short hello.default.svc.cluster.local 2>/dev/null || true)
echo
echo "\$ dig @127.0.0.2 +short hello.default.svc.cluster.local"
echo "$ip"
if [ -n "$ip" ] && command -v curl >/dev/null; then
  echo
  echo "\$ for i in \$(seq 10); do curl -s http://$ip/; done   # 90/10 between v1 and the v2 canary"
  for _ in $(seq 10); do curl -s "http://$ip/"; done
fi
echo
echo "The cluster keeps running. Try: SHOAL_SERVER=127.0.0.3:7948 ./bin/shoal get ns"
echo "Stop it with: make demo-stop"
