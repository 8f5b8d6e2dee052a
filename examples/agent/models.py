"""The agent's model: a function `async (command, text) -> str` that answers a chat
command about a document's text.

`local` (the default) is a deterministic stand-in that needs no network: the tests
and the demo run on it. `openai` calls any OpenAI-compatible chat completions API
(OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL). `module:function` loads your own.
Pick one with COLLAB_AGENT_MODEL.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Awaitable, Callable

import aiohttp

Model = Callable[[str, str], Awaitable[str]]

COMMANDS = ("summarize", "todo")
#: Seconds one model call may take (the workflow step retries a timeout).
MODEL_TIMEOUT = 60.0
#: Sentences and items the stand-in keeps.
SUMMARY_SENTENCES = 3
MAX_TODOS = 10

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_TODO = re.compile(r"(?:\[ \]|\bTODO\b:?)\s*(.+)$", re.IGNORECASE)
_IMPERATIVE = re.compile(r"\b(?:we|you|I) (?:should|must|need to|have to)\s+([^.!?\n]+)",
                         re.IGNORECASE)


async def local(command: str, text: str) -> str:
    """A deterministic answer from the text alone: the first sentences for
    `summarize`, the open items (`TODO`, `- [ ]`, "we should ...") for `todo`."""
    if command == "summarize":
        words = len(text.split())
        if not words:
            return "The document is empty."
        sentences = [s.strip() for s in _SENTENCE.findall(text) if len(s.split()) > 1]
        gist = " ".join(sentences[:SUMMARY_SENTENCES]) or text.strip()[:200]
        return f"{words} words. {gist}"
    if command == "todo":
        items = []
        for line in text.splitlines():
            match = _TODO.search(line)
            if match:
                items.append(match.group(1).strip())
            items.extend(m.strip() for m in _IMPERATIVE.findall(line) if not match)
        if not items:
            return "No open items."
        return "\n".join(f"- [ ] {item}" for item in items[:MAX_TODOS])
    raise ValueError(f"unknown command {command!r}")


PROMPTS = {
    "summarize": "Summarize this document in at most three sentences.",
    "todo": "List the open action items in this document as a Markdown checklist.",
}


async def openai(command: str, text: str) -> str:
    """An OpenAI-compatible chat completions API: OPENAI_API_KEY, OPENAI_BASE_URL
    (default https://api.openai.com/v1) and OPENAI_MODEL (default gpt-4o-mini)."""
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise RuntimeError("COLLAB_AGENT_MODEL=openai needs OPENAI_API_KEY")
    base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
    body = {"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            "messages": [{"role": "system", "content": PROMPTS[command]},
                         {"role": "user", "content": text}]}
    timeout = aiohttp.ClientTimeout(total=MODEL_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
            f"{base}/chat/completions", json=body,
            headers={"Authorization": f"Bearer {key}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"the model answered {resp.status}: {(await resp.text())[:200]}")
        answer = await resp.json()
    return str(answer["choices"][0]["message"]["content"]).strip()


def load_model(spec: str | None = None) -> Model:
    """The model COLLAB_AGENT_MODEL names: `local`, `openai` or `module:function`."""
    spec = spec if spec is not None else os.environ.get("COLLAB_AGENT_MODEL", "local")
    if spec in ("", "local"):
        return local
    if spec == "openai":
        return openai
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"COLLAB_AGENT_MODEL must be local, openai or module:function, "
                         f"got {spec!r}")
    return getattr(importlib.import_module(module), name)
