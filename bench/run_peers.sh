#!/usr/bin/env bash
# Side-by-side run of the shared Yjs benchmark harness: collab and its peers, same session.
#
# Copies the read-only harness to a scratch directory, installs it (Python venv + npm packages),
# then runs ROUNDS interleaved rounds (collab, node-ywebsocket, aiohttp-relay, pycrdt-uvicorn;
# a fresh server for every run, one run at a time), and prints the median tables.
#
#   bench/run_peers.sh                         # 3 rounds, about 30 minutes on 2 cores
#   ROUNDS=1 bench/run_peers.sh                # one round, about 10 minutes
#   BENCH_DIR=/tmp/peer-bench bench/run_peers.sh   # reuse an installed copy (skips the install)
#   ONLY=collab ROUNDS=1 bench/run_peers.sh    # only the collab rows
#
# Environment:
#   SHARED_BENCH  the harness to copy            (default /work/shared/bench)
#   BENCH_DIR     where the copy lives           (default: a new mktemp -d directory)
#   COLLAB        the collab executable          (default /work/venv/bin/collab, else `collab` on PATH)
#   ROUNDS        interleaved rounds             (default 3)
#   TAG           tag stored with every result   (default collab-side-by-side-YYYYMMDD)
#   ONLY          space-separated subset of: collab node-ywebsocket aiohttp-relay pycrdt-uvicorn
#
# Results are appended to $BENCH_DIR/results/*.jsonl; `python3 report.py --tag $TAG` in
# $BENCH_DIR prints the tables again. Server logs: $BENCH_DIR/logs/<server>.log.
set -uo pipefail

SHARED_BENCH="${SHARED_BENCH:-/work/shared/bench}"
ROUNDS="${ROUNDS:-3}"
TAG="${TAG:-collab-side-by-side-$(date -u +%Y%m%d)}"
ONLY="${ONLY:-collab node-ywebsocket aiohttp-relay pycrdt-uvicorn}"
if [ -z "${COLLAB:-}" ]; then
  if [ -x /work/venv/bin/collab ]; then COLLAB=/work/venv/bin/collab; else COLLAB="$(command -v collab)"; fi
fi
[ -x "$COLLAB" ] || { echo "collab executable not found; set COLLAB=/path/to/collab" >&2; exit 2; }

if [ -z "${BENCH_DIR:-}" ]; then
  BENCH_DIR="$(mktemp -d /tmp/collab-peer-bench.XXXXXX)"
fi
if [ ! -x "$BENCH_DIR/.venv/bin/python" ] || [ ! -d "$BENCH_DIR/node/node_modules" ]; then
  echo "### copying $SHARED_BENCH to $BENCH_DIR and installing" >&2
  mkdir -p "$BENCH_DIR"
  cp -r "$SHARED_BENCH"/. "$BENCH_DIR"/
  chmod -R u+w "$BENCH_DIR"
  (cd "$BENCH_DIR" && ./install.sh) || { echo "install failed" >&2; exit 1; }
fi
cd "$BENCH_DIR" || exit 1

# The harness starts collab itself on a free port, with a new empty {data} directory per run.
# No shell in between, so SIGTERM reaches the server directly.
SERVE="$COLLAB serve --host 127.0.0.1 --port {port}"
DB="--database-url sqlite:///{data}/collab.db"
collab() {  # collab SCENARIO [options]
  local scenario="$1"; shift
  if [ "$scenario" = coldload ]; then
    # The database is passed only through --persist-args, which the harness keeps across restarts.
    ./run.sh custom coldload --name collab --prefix /yjs --cmd "$SERVE" --persist-args "$DB" \
      --tag "$TAG" "$@"
  else
    ./run.sh custom "$scenario" --name collab --prefix /yjs --cmd "$SERVE $DB" --tag "$TAG" "$@"
  fi
}
peer() {  # peer SERVER SCENARIO [options]
  local server="$1" scenario="$2"; shift 2
  ./run.sh "$server" "$scenario" --tag "$TAG" "$@"
}
wants() { case " $ONLY " in *" $1 "*) return 0;; *) return 1;; esac; }
quiet() { "$@" > /dev/null; }   # the harness prints one long JSON line per run

echo "### bench dir $BENCH_DIR, tag $TAG, rounds $ROUNDS, collab $COLLAB" >&2
for round in $(seq 1 "$ROUNDS"); do
  if wants collab; then
    echo "### round $round collab $(date -u +%H:%M:%S)" >&2
    quiet collab fanout --clients 10 --rate 10 --duration 10
    quiet collab fanout --clients 50 --rate 10 --duration 10
    quiet collab fanout --clients 200 --rate 1 --duration 10
    quiet collab throughput --clients 20 --total 20000
    quiet collab manydocs --docs 1000
    quiet collab coldload --updates 10000 --repeats 3
  fi
  if wants node-ywebsocket; then
    echo "### round $round node-ywebsocket $(date -u +%H:%M:%S)" >&2
    quiet peer node-ywebsocket fanout --clients 10 --rate 10 --duration 10
    quiet peer node-ywebsocket fanout --clients 50 --rate 10 --duration 10
    quiet peer node-ywebsocket fanout --clients 200 --rate 1 --duration 10
    quiet peer node-ywebsocket throughput --clients 20 --total 20000
    quiet peer node-ywebsocket manydocs --docs 1000
    quiet peer node-ywebsocket coldload --updates 10000 --repeats 3
  fi
  if wants aiohttp-relay; then
    echo "### round $round aiohttp-relay $(date -u +%H:%M:%S)" >&2
    quiet peer aiohttp-relay fanout --clients 10 --rate 10 --duration 10
    quiet peer aiohttp-relay fanout --clients 50 --rate 10 --duration 10
    quiet peer aiohttp-relay fanout --clients 200 --rate 1 --duration 10
    quiet peer aiohttp-relay throughput --clients 20 --total 20000
    quiet peer aiohttp-relay manydocs --docs 1000
  fi
  if wants pycrdt-uvicorn; then
    echo "### round $round pycrdt-uvicorn $(date -u +%H:%M:%S)" >&2
    quiet peer pycrdt-uvicorn fanout --clients 50 --rate 10 --duration 10
    quiet peer pycrdt-uvicorn throughput --clients 20 --total 20000
    quiet peer pycrdt-uvicorn manydocs --docs 1000
  fi
done
echo "### done $(date -u +%H:%M:%S); errors in server logs:" >&2
grep -n -i -E "error|traceback|exception" logs/*.log | grep -v -E "ws_errors" | tail -20 >&2 || true
python3 report.py --tag "$TAG"
