#!/usr/bin/env bash
# Side-by-side run of the shared Yjs benchmark harness: collab and its peers, same session.
#
# Copies the read-only harness to a scratch directory, installs it (Python venv + npm packages),
# then runs ROUNDS interleaved rounds (collab, node-ywebsocket, aiohttp-relay, pycrdt-uvicorn;
# a fresh server for every run, one run at a time), and prints the median tables.
#
#   bench/run_peers.sh                         # 3 + 3 extra rounds, about 15 minutes on 2 cores
#   ROUNDS=1 EXTRA_ROUNDS=0 bench/run_peers.sh # one round, about 3.5 minutes
#   BENCH_DIR=/tmp/peer-bench bench/run_peers.sh   # reuse an installed copy (skips the install)
#   ONLY=collab ROUNDS=1 bench/run_peers.sh    # only the collab rows
#
# Environment:
#   SHARED_BENCH  the harness to copy            (default ../shared/bench beside the repo)
#   BENCH_DIR     where the copy lives           (default: a new mktemp -d directory)
#   COLLAB_REV    the collab commit to measure   (default HEAD). Its `collab/` tree is exported
#                 with `git archive` into BENCH_DIR and run with PYTHONPATH pointing at it, so
#                 edits made in the repository while the benchmark runs do not leak into it.
#                 COLLAB_REV=worktree runs the installed `collab` executable (whatever is on disk).
#   PYTHON        the Python that has collab's dependencies (default: python3 on PATH)
#   ROUNDS        interleaved rounds             (default 3)
#   EXTRA_ROUNDS  further interleaved rounds of only the two target rows that are closest to
#                 their limits, fanout N=50 and throughput, for collab, node-ywebsocket and
#                 aiohttp-relay (default 3; 0 to skip)
#   TAG           tag stored with every result   (default collab-REV-YYYYMMDD)
#   ONLY          space-separated subset of: collab node-ywebsocket aiohttp-relay pycrdt-uvicorn
#
# With every peer (the default ONLY) and a commit (not worktree), it then rewrites README.md's
# speed paragraph from this run (bench/readme_figures.py): the commit, the date and the figures.
# Results are appended to $BENCH_DIR/results/*.jsonl; `python3 report.py --tag $TAG` in
# $BENCH_DIR prints the tables again. Server logs: $BENCH_DIR/logs/<server>.log.
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED_BENCH="${SHARED_BENCH:-$REPO/../shared/bench}"
PYTHON="${PYTHON:-$(command -v python3)}"
COLLAB_REV="${COLLAB_REV:-HEAD}"
ROUNDS="${ROUNDS:-3}"
EXTRA_ROUNDS="${EXTRA_ROUNDS:-3}"
ONLY="${ONLY:-collab node-ywebsocket aiohttp-relay pycrdt-uvicorn}"
if [ "$COLLAB_REV" = worktree ]; then
  REV=worktree
else
  REV="$(git -C "$REPO" rev-parse --short "$COLLAB_REV")" || exit 2
fi
TAG="${TAG:-collab-$REV-$(date -u +%Y%m%d)}"

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
if [ "$REV" = worktree ]; then
  SERVE="$(dirname "$PYTHON")/collab serve --host 127.0.0.1 --port {port}"
else
  SRC="$BENCH_DIR/collab-src-$REV"
  if [ ! -d "$SRC/collab" ]; then
    mkdir -p "$SRC" && git -C "$REPO" archive "$REV" collab | tar -x -C "$SRC" || exit 2
  fi
  # The harness starts servers with its own environment and cwd=$BENCH_DIR, so this snapshot
  # is what `-m collab` imports (ahead of the editable install in the venv).
  export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
  SERVE="$PYTHON -m collab serve --host 127.0.0.1 --port {port}"
fi
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

echo "### bench dir $BENCH_DIR, tag $TAG, rounds $ROUNDS + $EXTRA_ROUNDS, collab $REV: $SERVE" >&2
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
for round in $(seq 1 "$EXTRA_ROUNDS"); do
  echo "### extra round $round $(date -u +%H:%M:%S)" >&2
  if wants collab; then
    quiet collab fanout --clients 50 --rate 10 --duration 10
    quiet collab throughput --clients 20 --total 20000
  fi
  for server in node-ywebsocket aiohttp-relay; do
    if wants "$server"; then
      quiet peer "$server" fanout --clients 50 --rate 10 --duration 10
      quiet peer "$server" throughput --clients 20 --total 20000
    fi
  done
done
echo "### done $(date -u +%H:%M:%S); errors in server logs:" >&2
grep -n -i -E "error|traceback|exception" logs/*.log | grep -v -E "ws_errors" | tail -20 >&2 || true
python3 report.py --tag "$TAG"
# A run of every peer is what README.md's speed paragraph quotes: rewrite it from this one.
if [ "$ONLY" = "collab node-ywebsocket aiohttp-relay pycrdt-uvicorn" ] && [ "$REV" != worktree ]; then
  "$PYTHON" "$REPO/bench/readme_figures.py" --results "$BENCH_DIR/results" --tag "$TAG" \
    --rev "$REV" --readme "$REPO/README.md" >&2
fi
