#!/usr/bin/env python3
"""What restoring a version costs (collab/actors/restore.py): the time of
`restoring_update` and the size of the update it makes, for a 10,000-character text
and 1,000-item arrays, with a few scattered edits since the version, with
everything replaced, and with nothing changed.

    python bench/restore_bench.py

The text is drawn from 15 words, so each word recurs hundreds of times: close to the
worst case of the diff (see MAX_DIFF_STEPS); prose is cheaper. Best of 3 runs. It
prints numbers only.
"""

from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pycrdt import Array, Doc, Map, Text

from collab.actors.restore import restoring_update

WORDS = ("the quick brown fox jumps over lazy dog restore version text array collab "
         "server 😀").split()
#: Edits made between the version and the current state in the "scattered" cases.
EDITS = 50
RUNS = 3


def main() -> None:
    rng = random.Random(7)
    for label, current, version in cases(rng):
        best = min(timed(current, version) for _ in range(RUNS))
        size = len(restoring_update(current, version))
        print(f"{label:45} {best * 1000:7.1f} ms  {size:6} bytes")


def timed(current: bytes, version: bytes) -> float:
    started = time.perf_counter()
    restoring_update(current, version)
    return time.perf_counter() - started


def cases(rng: random.Random):
    doc = Doc()
    text = doc.get("t", type=Text)
    text.insert(0, prose(rng, 10_000))
    text.format(offset(text, 100), offset(text, 300), {"bold": True})
    version = doc.get_update()
    for _ in range(EDITS):
        length = len(str(text))
        at = rng.randrange(length)
        if rng.random() < 0.5:
            text.insert(offset(text, at), rng.choice(WORDS) + " ")
        else:
            del text[offset(text, at):offset(text, min(length, at + rng.randint(1, 8)))]
    current = doc.get_update()
    yield f"text 10,000 chars, {EDITS} scattered edits", current, version
    yield "text 10,000 chars, nothing changed", current, current
    yield "text 10,000 chars, all rewritten", replaced(current, "t", Text,
                                                       prose(rng, 10_000)), version

    doc = Doc()
    items = doc.get("a", type=Array)
    items.extend([rng.randrange(100) for _ in range(1000)])
    version = doc.get_update()
    for _ in range(EDITS):
        at = rng.randrange(len(items))
        if rng.random() < 0.5:
            items.insert(at, rng.randrange(1000))
        else:
            del items[at]
    current = doc.get_update()
    yield f"array 1,000 numbers, {EDITS} scattered edits", current, version
    yield "array 1,000 numbers, all replaced", replaced(
        current, "a", Array, [rng.randrange(100) for _ in range(1000)]), version

    doc = Doc()
    items = doc.get("a", type=Array)
    items.extend([Map({"id": i, "x": rng.randrange(9)}) for i in range(1000)])
    version = doc.get_update()
    for _ in range(EDITS):
        items[rng.randrange(1000)]["x"] = 99
    current = doc.get_update()
    yield f"array 1,000 maps, {EDITS} maps edited", current, version
    yield "array 1,000 maps, nothing changed", current, current


def prose(rng: random.Random, length: int) -> str:
    words: list[str] = []
    while sum(map(len, words)) + len(words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:length]


def offset(text: Text, index: int) -> int:
    """pycrdt's offset (UTF-8 bytes) of character `index` of a text without embeds."""
    return len(str(text)[:index].encode())


def replaced(update: bytes, name: str, kind: type, content) -> bytes:
    doc = Doc()
    doc.apply_update(update)
    shared = doc.get(name, type=kind)
    del shared[0:len(shared)]
    if kind is Text:
        shared.insert(0, content)
    else:
        shared.extend(content)
    return doc.get_update()


if __name__ == "__main__":
    main()
