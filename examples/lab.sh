#!/usr/bin/env bash
# make lab: the multi-VM lab without VMs. Three nodes, each a network
# namespace on one bridge (10.250.77.0/24, the machine is .1), each running
# a shoal agent on containerd; pods get addresses from their node's pod
# CIDR and reach each other across nodes through host-gateway routes.
# Needs root, containerd, runc and containernetworking-plugins.
#
#   make lab          # up, load the test image on n1, run a deployment and a service
#   make lab-stop     # stop the agents, remove the namespaces and the bridge
#
# Data, logs and (when no system containerd runs) a private containerd live
# in .lab/.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=$PWD/bin/shoal
DIR=$PWD/.lab
NAME=demo
NODES=3
SOCK=${CONTAINERD_SOCKET:-/run/containerd/containerd.sock}

labnet() { go run ./e2e/lab/labnet "$@" -name "$NAME" -nodes "$NODES"; }
cli() { "$SHOAL" --server 10.250.77.2:7948 --timeout 10s "$@"; }

# waitgone PIDFILE: SIGTERM the process, wait up to 30 s, then SIGKILL.
waitgone() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  if [ -f "$DIR/n1.pid" ] && kill -0 "$(cat "$DIR/n1.pid")" 2>/dev/null; then
    # Delete the workload first and let the agents stop its containers and
    # tear their network namespaces down.
    cli delete -f examples/lab.yaml --ignore-not-found >/dev/null 2>&1 || true
    for _ in $(seq 1 200); do
      if [ -z "$(cli get pods -A -o name 2>/dev/null)" ] && ! grep -q " $DIR/" /proc/self/mounts; then
        break
      fi
      sleep 0.3
    done
  fi
  for i in $(seq 1 "$NODES"); do
    waitgone "$DIR/n$i.pid"
  done
  waitgone "$DIR/containerd.pid"
  labnet down || true
}

if [ "${1:-}" = "stop" ]; then
  stop
  echo "lab stopped (data in $DIR/)"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "make lab needs root (network namespaces)" >&2; exit 1; }
for bin in containerd runc nsenter ip; do
  command -v "$bin" >/dev/null || { echo "make lab needs $bin (apt-get install containerd runc containernetworking-plugins iproute2)" >&2; exit 1; }
done
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || { echo "make lab needs the CNI plugins (apt-get install containernetworking-plugins)" >&2; exit 1; }

stop
mkdir -p "$DIR"
if [ ! -S "$SOCK" ]; then
  # No system containerd: run a private one for the lab.
  SOCK=$DIR/containerd/containerd.sock
  mkdir -p "$DIR/containerd"
  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
EOF
  containerd --config "$DIR/containerd/config.toml" >"$DIR/containerd.log" 2>&1 &
  echo $! >"$DIR/containerd.pid"
  for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
  echo "started a private containerd on $SOCK (log $DIR/containerd.log)"
fi

mapfile -t HOSTS < <(labnet up)
i=0
for line in "${HOSTS[@]}"; do
  i=$((i+1))
  read -r ns ip <<<"$line"
  nsenter --net="/run/netns/$ns" -- "$SHOAL" agent --name "n$i" --bind "$ip" --data-dir "$DIR/n$i" \
    --bootstrap-expect 3 --join 10.250.77.2 --runtime containerd --containerd-socket "$SOCK" \
    --containerd-namespace "lab-n$i" >"$DIR/n$i.log" 2>&1 &
  echo $! >"$DIR/n$i.pid"
  echo "started agent n$i in network namespace $ns on $ip (log $DIR/n$i.log)"
done

echo "waiting for the cluster to elect a leader and give every node a pod CIDR..."
for _ in $(seq 1 150); do
  n=$(cli get nodes -o json 2>/dev/null | grep -c '"podCIDR"' || true)
  [ "$n" = "$NODES" ] && break
  sleep 0.2
done

run() { echo; echo "\$ shoal $*"; cli "$@"; }
run cluster members
run get nodes -o wide
echo; echo '$ shoal get nodes -o json | grep podCIDR'
cli get nodes -o json | grep '"podCIDR"'
for _ in $(seq 1 100); do
  [ "$(ip -n labdemo-n1 route show proto 83 | wc -l)" = $((NODES-1)) ] && break
  sleep 0.2
done
echo; echo "\$ ip -n labdemo-n1 route show proto 83    # routes to the other nodes' pods"
ip -n labdemo-n1 route show proto 83
run image load bin/shoal-testapp.oci.tar
run apply -f examples/lab.yaml
echo "waiting for 6 Ready pods (n2 and n3 fetch the image from n1)..."
for _ in $(seq 1 300); do
  [ "$(cli get pods -l app=lab 2>/dev/null | grep -c ' 1/1 *Running ')" = 6 ] && break
  sleep 0.3
done
run get pods -o wide
run image ls
pods=($(cli get pods -l app=lab -o name))
first=${pods[0]#pod/}
last=${pods[-1]#pod/}
lastip=$(cli get pod "$last" -o json | sed -n 's/.*"podIP": *"\([^"]*\)".*/\1/p' | head -1)
run exec "$first" -- /shoal-testapp get "http://$lastip:8080/"
run exec "$first" -- /shoal-testapp get http://lab/
cat <<EOF

The lab is up. Try:
  bin/shoal --server 10.250.77.2:7948 top pods
  kill -9 \$(cat .lab/n3.pid)     # watch n3's pods heal onto n1 and n2
  make lab-stop
EOF
