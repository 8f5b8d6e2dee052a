"""Typing an answer into a document a chunk at a time, resumably: each chunk goes in
with a progress record in the document itself (the `agent` map: chunks written and
a sticky position after the last), in one transaction, so whoever carries on (a
resumed workflow, a restarted bot) starts after the last chunk that landed and
never writes one twice. Plain pycrdt: used inside the server (agent.py) and from
another process (bot.py)."""

from __future__ import annotations

import re

from pycrdt import Assoc, Doc, Map, StickyIndex, Text

#: The document's progress map: one entry per command message, by its room seq.
PROGRESS = "agent"
#: The shared text it reads and writes: y-codemirror's default, as in the demo.
TEXT = "codemirror"
#: Headings of the answers it types.
TITLES = {"summarize": "Summary", "todo": "To do"}
_CHUNK = re.compile(r"\s*\S+|\s+")


def answer_block(command: str, user: str, reply: str) -> str:
    """What gets typed: a heading naming who asked, then the model's reply."""
    return f"\n\n{TITLES[command]} (asked by {user}):\n{reply}\n"


def chunks_of(block: str) -> list[str]:
    """The pieces typed one at a time: a word and the space before it."""
    return _CHUNK.findall(block)


def type_next(doc: Doc, entry: str, chunks: list[str]) -> dict | None:
    """Insert the next of `chunks` at the end of what entry `entry` wrote so far (at
    the end of the text, first), with its progress record; call inside one
    transaction. Returns the caret after it as a relative position (Yjs JSON, what
    editors' awareness `cursor` holds), or None when every chunk is in."""
    text = doc.get(TEXT, type=Text)
    progress = doc.get(PROGRESS, type=Map)
    done = progress.get(entry)
    if done is None:
        written, at = 0, len(text)
    else:
        written = int(done["written"])
        at = StickyIndex.decode(bytes.fromhex(done["at"]), text).get_index()
    if written >= len(chunks):
        return None
    chunk = chunks[written]
    text.insert(at, chunk)
    caret = text.sticky_index(at + len(chunk), Assoc.BEFORE)
    progress[entry] = {"written": written + 1, "at": caret.encode().hex()}
    return caret.to_json()
