#!/usr/bin/env bash
# make bench: Shoal's desired-state store against a 3-member etcd cluster
# started side by side (leader failover time, write throughput at 1 and 64
# clients). Prints both systems' figures and ratio= lines, the last line
# being one. See docs/bench.md.
#
# Knobs (environment): SHOAL_BIN (default bin/shoal), ETCD_BIN (default etcd),
# SHOAL_BENCH_KILLS (20), SHOAL_BENCH_SECONDS (10), SHOAL_BENCH_WARMUP (2s),
# SHOAL_BENCH_REPS (3), SHOAL_BENCH_CLIENTS (1,64), SHOAL_BENCH_KEEP=1 keeps
# data and logs. A short CI run:
#   SHOAL_BENCH_KILLS=3 SHOAL_BENCH_SECONDS=2 SHOAL_BENCH_REPS=1 bash e2e/bench/store.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

etcd_bin=${ETCD_BIN:-etcd}
if ! command -v "$etcd_bin" >/dev/null 2>&1; then
	echo "store.sh: etcd not found: the reference cluster needs it." >&2
	echo "  install it with: apt-get install etcd-server etcd-client" >&2
	exit 1
fi
shoal_bin=${SHOAL_BIN:-bin/shoal}
if [ ! -x "$shoal_bin" ]; then
	echo "store.sh: $shoal_bin not found: run make build first (or set SHOAL_BIN)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
pid=
cleanup() {
	# storebench stops its daemons itself; this covers a crash of it.
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "${SHOAL_BENCH_KEEP:-}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
# Hand INT and TERM to storebench, which then kills what it started.
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi' INT TERM

go build -o "$work/storebench" ./e2e/bench/storebench

SHOAL_BIN=$(realpath "$shoal_bin") ETCD_BIN=$etcd_bin SHOAL_BENCH_DIR=$work \
	"$work/storebench" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
# A trapped signal ends the first wait early: wait for storebench's own cleanup.
if kill -0 "$pid" 2>/dev/null; then
	rc=0
	wait "$pid" || rc=$?
fi
pid=
exit "$rc"
