"""An actor that edits documents from the server side (served with
`--app tests.apps.scribe:registry`): DocumentRef through `self.document`."""

from __future__ import annotations

from pycrdt import Text

import collab


class Scribe(collab.Actor):
    @collab.action
    async def write(self, doc: str, text: str) -> str:
        """Append `text` to the document's text `body`; returns the body after it."""
        async with self.document(doc).transact() as copy:
            body = copy.get("body", type=Text)
            body.insert(len(body), text)
            return str(body)

    @collab.action
    async def fail_while_writing(self, doc: str) -> None:
        async with self.document(doc).transact() as copy:
            copy.get("body", type=Text).insert(0, "never sent")
            raise collab.ActionError("changed its mind", code="refused")

    @collab.action
    async def appear(self, doc: str, name: str) -> int:
        ref = self.document(doc)
        await ref.set_presence({"user": {"name": name, "color": "#f80"}})
        return ref.client_id

    @collab.action
    async def leave(self, doc: str) -> None:
        await self.document(doc).set_presence(None)


class Indexer(collab.Actor):
    """Hears about changes to documents named watched/*, debounced (runtime/watches.py)."""

    @collab.watch("watched/*", quiet=0.3, at_most=1.0, key="all")
    async def changed(self, change: dict) -> None:
        copy = await self.document(change["doc"]).read()
        self.state.setdefault("changes", []).append({
            "doc": change["doc"], "seq": change["seq"], "with_update": change["update"] is not None,
            "body": str(copy.get("body", type=Text))})

    @collab.action
    def seen(self) -> list:
        return self.state.get("changes", [])


registry = collab.Registry(Scribe, Indexer)
