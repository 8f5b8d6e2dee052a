#!/usr/bin/env python3
"""Rewrite README.md's speed paragraph from one run of the shared harness, so the
figures quoted there always carry the commit and date they were measured on and
the same run's peer figures. `bench/run_peers.sh` calls it at the end of a full
run (every peer); by hand:

    python bench/readme_figures.py --results DIR/results --tag TAG --rev REV [--readme README.md]

It reads the harness's `results/*.jsonl` lines of `--tag`, takes the median of each
figure over the runs, and replaces the text between the README's
`<!-- figures:begin -->` and `<!-- figures:end -->` markers. A figure a peer did not
produce makes it stop with a message, leaving the README as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
PEERS = ("collab", "node-ywebsocket", "aiohttp-relay", "pycrdt-uvicorn")

#: name -> (scenario, the params that select the run, the result field's dotted path).
FIGURES = {
    "updates_per_s": ("throughput", {"clients": 20, "total": 20000}, "accepted_updates_per_s"),
    "fanout_p99_ms": ("fanout", {"clients": 50, "rate": 10.0}, "latency_ms.p99"),
    "cpu_us": ("fanout", {"clients": 50, "rate": 10.0}, "server_cpu_us_per_delivery"),
    "kib_per_doc": ("manydocs", {"docs": 1000}, "rss_kib_per_doc"),
    # The first load after the restart: later ones may find the file in the OS cache.
    "load_ms": ("coldload", {"updates": 10000}, "loads.0.complete_ms"),
}


class MissingFigure(Exception):
    pass


def field(result: dict, path: str) -> float | None:
    """The number at `path` (keys and list indexes, dotted) in `result`, or None."""
    value: object = result
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return float(value) if isinstance(value, int | float) else None


def medians(lines: Iterable[dict], tag: str) -> dict[tuple[str, str], float]:
    """{(server, figure): median over the tag's runs}."""
    samples: dict[tuple[str, str], list[float]] = {}
    for line in lines:
        if line.get("tag") != tag:
            continue
        for name, (scenario, params, path) in FIGURES.items():
            if line.get("scenario") != scenario or any(
                    line.get("params", {}).get(k) != v for k, v in params.items()):
                continue
            value = field(line.get("result", {}), path)
            if value is not None:
                samples.setdefault((line["server"], name), []).append(value)
    return {key: statistics.median(values) for key, values in samples.items()}


def paragraph(figures: dict[tuple[str, str], float], rev: str, date: str) -> str:
    def get(server: str, name: str) -> float:
        try:
            return figures[server, name]
        except KeyError:
            raise MissingFigure(f"no {name} for {server} in this run") from None

    def count(server: str, name: str) -> str:
        return f"{round(get(server, name), -2):,.0f}"

    def one(server: str, name: str) -> str:
        return f"{get(server, name):.1f}"

    return (
        f"Speed, measured side by side on a 2-core VM while durably logging every update "
        f"(collab {rev}, {date}, the shared harness; [bench/README.md](bench/README.md)): "
        f"{count('collab', 'updates_per_s')} accepted updates/s into one document with 20 "
        f"writers (the Node y-websocket server: {count('node-ywebsocket', 'updates_per_s')}, "
        f"without persistence; a bare aiohttp relay: {count('aiohttp-relay', 'updates_per_s')}; "
        f"pycrdt-websocket: {count('pycrdt-uvicorn', 'updates_per_s')}), fan-out p99 of "
        f"{one('collab', 'fanout_p99_ms')} ms at 50 clients \u00d7 10 updates/s (Node: "
        f"{one('node-ywebsocket', 'fanout_p99_ms')} ms, the relay: "
        f"{one('aiohttp-relay', 'fanout_p99_ms')} ms), {one('collab', 'cpu_us')} µs of server "
        f"CPU per delivered update there (Node: {one('node-ywebsocket', 'cpu_us')}, the relay: "
        f"{one('aiohttp-relay', 'cpu_us')}), {get('collab', 'kib_per_doc'):.0f} KiB per loaded "
        f"document (Node: {get('node-ywebsocket', 'kib_per_doc'):.0f}), and a 10,000-update "
        f"document fully loaded {get('collab', 'load_ms'):.0f} ms after a restart (Node: "
        f"{get('node-ywebsocket', 'load_ms'):.0f} ms)."
    )


def wrap(text: str, width: int = 80) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def rewrite(readme: str, text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise MissingFigure(f"README.md has no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{wrap(text)}\n{END}", readme, count=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--rev", required=True)
    parser.add_argument("--date", default=datetime.now(UTC).strftime("%Y-%m-%d"))
    parser.add_argument("--readme", type=Path,
                        default=Path(__file__).resolve().parent.parent / "README.md")
    args = parser.parse_args()
    lines = [json.loads(line) for path in sorted(args.results.glob("*.jsonl"))
             for line in path.read_text().splitlines() if line.strip()]
    try:
        text = paragraph(medians(lines, args.tag), args.rev, args.date)
        args.readme.write_text(rewrite(args.readme.read_text(), text))
    except MissingFigure as exc:
        print(f"README.md left as it was: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
