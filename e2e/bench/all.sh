#!/usr/bin/env bash
# make bench: every Shoal benchmark beside its reference, in one run:
#   store      e2e/bench/store.sh: the desired-state store against etcd
#   placement  e2e/bench/schedbench: pods placed/s on 100 in-process agents
#              against the raw store commit rate of the same cluster
#   podstart   e2e/bench/podstart: apply-to-Running on the process runtime
#              against a bare fork+exec of the same binary
#   containerd e2e/bench/ctrbench: apply-to-Running and start rate on the
#              containerd runtime (a private daemon) against `ctr run` of
#              the same image on the same daemon (apt-get install containerd
#              runc containernetworking-plugins; needs root)
#   dns        e2e/bench/dnsbench: cluster DNS queries/s and p99 of an agent
#              holding 1,000 services against CoreDNS (built from source,
#              cached) serving the same records from a zone file, with
#              dnsperf (apt-get install dnsperf)
#   proxy      e2e/bench/proxybench: service proxy TCP throughput (iperf3, 1
#              and 8 streams) and short HTTP connections/s (wrk) against a
#              direct connection and HAProxy in TCP mode on the same
#              backends (apt-get install haproxy iperf3 wrk; needs root)
# Each part prints its own figures and ratio= lines; at the end all.sh
# repeats every ratio= line, so the last line of output is one. It exits
# non-zero when a part failed. See docs/bench.md.
#
# Knobs (environment): SHOAL_BENCH_PARTS (default "store placement
# podstart containerd dns proxy"), SHOAL_BIN (bin/shoal), SHOAL_TESTAPP_BIN (bin/shoal-testapp),
# SHOAL_BENCH_REPS (3, every part), SHOAL_BENCH_AGENTS (100),
# SHOAL_BENCH_PODS (1000), SHOAL_BENCH_PLACE_TIMEOUT (3m),
# SHOAL_BENCH_PODSTART_PODS (100), SHOAL_BENCH_CONTAINERD_PODS (50),
# SHOAL_BENCH_CONTAINERD_PARALLEL (10), SHOAL_BENCH_SECONDS (10, store, dns and proxy),
# SHOAL_COREDNS_BIN and SHOAL_BENCH_DNS_* (see dnsbench -h), and store.sh's
# own. A short CI run:
#   SHOAL_BENCH_PARTS="placement podstart containerd dns" SHOAL_BENCH_REPS=1 SHOAL_BENCH_AGENTS=10 \
#     SHOAL_BENCH_PODS=100 SHOAL_BENCH_PODSTART_PODS=20 SHOAL_BENCH_CONTAINERD_PODS=10 \
#     SHOAL_BENCH_SECONDS=3 SHOAL_BENCH_DNS_PROBE_SECONDS=2 bash e2e/bench/all.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

parts=${SHOAL_BENCH_PARTS:-store placement podstart containerd dns proxy}
shoal_bin=${SHOAL_BIN:-bin/shoal}
if [ ! -x "$shoal_bin" ]; then
	echo "all.sh: $shoal_bin not found: run make build first (or set SHOAL_BIN)" >&2
	exit 1
fi
SHOAL_BIN=$(realpath "$shoal_bin")
export SHOAL_BIN
export SHOAL_BENCH_PLACE_TIMEOUT=${SHOAL_BENCH_PLACE_TIMEOUT:-3m}

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-all.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/all.log
: >"$log"

# Each part stops what it started on SIGINT/SIGTERM (the whole foreground
# process group gets the signal); tee keeps a copy for the summary.
failed=()
part() {
	local name=$1
	shift
	echo "==== $name ====" | tee -a "$log"
	if ! "$@" 2>&1 | tee -a "$log"; then
		failed+=("$name")
	fi
}

# program PART NAME: build e2e/bench/NAME and run it as part PART.
program() {
	go build -o "$work/$2" "./e2e/bench/$2"
	part "$1" "$work/$2"
}

for p in $parts; do
	case $p in
	store)
		part store bash e2e/bench/store.sh
		;;
	placement)
		program placement schedbench
		;;
	podstart)
		program podstart podstart
		;;
	containerd)
		program containerd ctrbench
		;;
	dns)
		program dns dnsbench
		;;
	proxy)
		program proxy proxybench
		;;
	*)
		echo "all.sh: unknown part $p in SHOAL_BENCH_PARTS (store, placement, podstart, containerd, dns, proxy)" >&2
		exit 2
		;;
	esac
done

echo "==== summary: every ratio of this run ===="
for f in "${failed[@]}"; do
	echo "FAILED: $f (its output is above)"
done
grep -h 'ratio=' "$log" || echo "all.sh: no part printed a ratio" >&2
[ ${#failed[@]} -eq 0 ]
