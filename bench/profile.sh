#!/usr/bin/env bash
# Profile a running collab server with py-spy while the shared harness loads it.
#
#   bench/profile.sh BENCH_DIR SCENARIO [harness options...]
#   bench/profile.sh /tmp/peer-bench fanout --clients 50 --rate 10 --duration 20
#   bench/profile.sh /tmp/peer-bench throughput --clients 20 --total 20000 --repeat 3
#
# BENCH_DIR is an installed copy of the shared harness (see bench/run_peers.sh). This starts
# `collab serve` on a free port with a temporary SQLite file, attaches `py-spy record` to its PID
# (raw collapsed stacks, 250 Hz, all threads, GIL-idle samples left out), runs the harness in
# `external` mode against it, stops the server with SIGTERM, and prints the hottest functions
# (self and inclusive share of the busy samples, see bench/pyspy_top.py). Needs py-spy (`pip install py-spy`)
# and permission to ptrace the server (root, or kernel.yama.ptrace_scope=0).
#
# Environment: COLLAB (default: collab on PATH), COLLAB_SRC (a directory holding a `collab/`
# source tree, e.g. run_peers.sh's BENCH_DIR/collab-src-REV: run that instead, with the Python
# next to COLLAB), PYSPY (default py-spy next to COLLAB), OUT (output prefix, default
# /tmp/collab-profile-SCENARIO), PYSPY_ARGS (extra py-spy flags, e.g. --native). Results are
# tagged "profile" in the harness and so stay out of its reports. The server runs on asyncio's
# loop unless COLLAB_EVENT_LOOP says otherwise: on uvloop, py-spy counts the loop waiting
# for sockets as busy (in one profile, 28% of all samples at 8% CPU), so the shares would be wrong.
set -euo pipefail
export COLLAB_EVENT_LOOP="${COLLAB_EVENT_LOOP:-asyncio}"
BENCH_DIR="${1:?usage: bench/profile.sh BENCH_DIR SCENARIO [options]}"
SCENARIO="${2:?usage: bench/profile.sh BENCH_DIR SCENARIO [options]}"
shift 2
HERE="$(cd "$(dirname "$0")" && pwd)"
COLLAB="${COLLAB:-$(command -v collab)}"
PYSPY="${PYSPY:-$(dirname "$COLLAB")/py-spy}"
OUT="${OUT:-/tmp/collab-profile-$SCENARIO}"
TMP="$(mktemp -d /tmp/collab-profile.XXXXXX)"

if [ -n "${COLLAB_SRC:-}" ]; then
  (cd "$TMP" && PYTHONPATH="$COLLAB_SRC" exec "$(dirname "$COLLAB")/python" -m collab serve \
    --host 127.0.0.1 --port 0 --database-url "sqlite:///$TMP/collab.db") \
    > "$TMP/stdout" 2> "$OUT.server.log" &
else
  "$COLLAB" serve --host 127.0.0.1 --port 0 --database-url "sqlite:///$TMP/collab.db" \
    > "$TMP/stdout" 2> "$OUT.server.log" &
fi
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2> /dev/null || true
  wait "$SERVER" 2> /dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  PORT="$(sed -n 's/^collab serving on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$TMP/stdout")"
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "${PORT:-}" ] || { echo "collab did not start; see $OUT.server.log" >&2; exit 1; }

# shellcheck disable=SC2086
"$PYSPY" record --pid "$SERVER" --rate 250 --format raw --output "$OUT.txt" ${PYSPY_ARGS:-} \
  > "$OUT.pyspy.log" 2>&1 &
SPY=$!
sleep 1
(cd "$BENCH_DIR" && ./run.sh external "$SCENARIO" --name collab-profile \
  --url "ws://127.0.0.1:$PORT/yjs" --pid "$SERVER" --tag profile "$@") > "$OUT.results.jsonl"
kill -INT "$SPY" 2> /dev/null || true   # py-spy writes its output when interrupted
wait "$SPY" 2> /dev/null || true

"$(dirname "$COLLAB")/python" "$HERE/pyspy_top.py" "$OUT.txt"
echo "raw stacks: $OUT.txt  harness result: $OUT.results.jsonl  server log: $OUT.server.log" >&2
