#!/usr/bin/env python3
"""Summarise a `py-spy record --format raw` file: the hottest functions, self and inclusive.

    python bench/pyspy_top.py /tmp/collab-profile-fanout.txt [--top 25]

py-spy also samples threads that are blocked rather than running: the event loop waiting in
epoll, and aiosqlite's worker thread waiting on its queue. Those samples are counted as idle
and left out, so the percentages are shares of the server's busy time. Run this with the
server's Python so that aiosqlite's source can be read to recognise its waiting line.
"""

from __future__ import annotations

import argparse
import linecache
from collections import Counter

try:
    import aiosqlite.core

    AIOSQLITE_SOURCE: str | None = aiosqlite.core.__file__
except ImportError:  # then aiosqlite's waiting samples count as busy
    AIOSQLITE_SOURCE = None


def is_idle(leaf: str) -> bool:
    """A leaf frame that is a blocking wait, not work."""
    if leaf.startswith(("EpollSelector.select ", "select (selectors.py")):
        return True
    if leaf.startswith("_connection_worker_thread (") and AIOSQLITE_SOURCE:
        line = int(leaf.rsplit(":", 1)[1].rstrip(")"))
        return ".get(" in linecache.getline(AIOSQLITE_SOURCE, line)
    return False


def without_line(frame: str) -> str:
    """'function (path/file.py:123)' -> 'function (path/file.py)'."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw", help="output of py-spy record --format raw")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    self_lines: Counter[str] = Counter()
    self_funcs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    with open(args.raw) as f:
        for raw in f:
            stack, _, count = raw.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            if is_idle(frames[-1]):
                idle += n
                continue
            busy += n
            self_lines[frames[-1]] += n
            self_funcs[without_line(frames[-1])] += n
            for frame in {without_line(x) for x in frames}:
                inclusive[frame] += n
    share = lambda n: f"{100 * n / max(1, busy):6.1f}"  # noqa: E731
    print(f"{busy} busy samples ({idle} idle samples left out)")
    print("\nself %  function")
    for frame, n in self_funcs.most_common(args.top):
        print(f"{share(n)}  {frame}")
    print("\nself %  line")
    for frame, n in self_lines.most_common(args.top):
        print(f"{share(n)}  {frame}")
    print("\nincl %  function")
    for frame, n in inclusive.most_common(args.top + 20):
        print(f"{share(n)}  {frame}")


if __name__ == "__main__":
    main()
