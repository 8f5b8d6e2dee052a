"""Compaction keeps content: loading snapshot+log gives the same document before and after."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.actors.ydoc import (
    MERGE_FAN_IN,
    UnknownRoot,
    WrongRootType,
    compacted_snapshot,
    doc_from_storage,
    json_view,
    merge_many,
    root_kinds,
)
from collab.storage.base import StoredDocument


def content(doc: Doc) -> tuple:
    return (str(doc.get("body", type=Text)), doc.get("meta", type=Map).to_py(),
            doc.get("items", type=Array).to_py())


edit = st.tuples(
    st.integers(0, 2),  # which client edits
    st.sampled_from(["insert", "delete", "set", "push"]),
    st.text(alphabet="abcxyz", min_size=1, max_size=4),
)


def make_updates(edits) -> list[bytes]:
    """Three clients editing; each client's updates are exchanged only sometimes,
    so the log mixes concurrent edits."""
    clients = [Doc() for _ in range(3)]
    updates: list[bytes] = []
    for doc in clients:
        doc.observe(lambda event, sink=updates: sink.append(event.update))
    for who, op, value in edits:
        doc = clients[who]
        text = doc.get("body", type=Text)
        if op == "insert":
            text.insert(len(text) // 2, value)
        elif op == "delete" and len(text):
            del text[0:min(len(text), len(value))]
        elif op == "set":
            doc.get("meta", type=Map)[value] = len(updates)
        else:
            doc.get("items", type=Array).append(value)
    return updates


@settings(max_examples=60, deadline=None)
@given(st.lists(edit, min_size=1, max_size=40), st.data())
def test_compaction_preserves_loaded_content(edits, data):
    updates = make_updates(edits)
    rows = list(enumerate(updates, start=1))
    # Deliver a random prefix order to the server: some updates may wait for dependencies.
    order = data.draw(st.permutations(rows))
    upto = data.draw(st.integers(0, len(order)))
    log = [(seq, update) for seq, (_, update) in enumerate(order, start=1)]
    before = StoredDocument(None, 0, log)
    live = doc_from_storage(before)
    covered = StoredDocument(None, 0, log[:upto])
    at_cut = doc_from_storage(covered)
    snapshot = compacted_snapshot(at_cut.get_update(), at_cut.get_state(), None,
                                  [u for _, u in log[:upto]])
    after = StoredDocument(snapshot, upto, log[upto:])
    assert content(doc_from_storage(after)) == content(live)
    # Compacting twice (snapshot + more rows) still preserves content.
    again = compacted_snapshot(live.get_update(), live.get_state(), snapshot,
                               [u for _, u in log[upto:]])
    assert content(doc_from_storage(StoredDocument(again, len(log), []))) == content(live)


def test_pending_updates_survive_compaction():
    updates = make_updates([(0, "insert", "a"), (0, "insert", "b"), (0, "insert", "c")])
    # The server got update 1 and 3, but not 2: update 3 waits for its dependency.
    log = [(1, updates[0]), (2, updates[2])]
    doc = doc_from_storage(StoredDocument(None, 0, log))
    snapshot = compacted_snapshot(doc.get_update(), doc.get_state(), None, [u for _, u in log])
    restored = doc_from_storage(StoredDocument(snapshot, 2, []))
    restored.apply_update(updates[1])  # the missing dependency finally arrives
    reference = doc_from_storage(StoredDocument(None, 0, list(enumerate(updates, 1))))
    assert content(restored) == content(reference) != ("", {}, [])


def test_json_view():
    doc = Doc()
    doc.get("body", type=Text).insert(0, "hi")
    doc.get("meta", type=Map)["n"] = 1
    view = json_view(doc.get_update(), {"text": ["body"], "map": ["meta"]})
    assert view == {"text": {"body": "hi"}, "map": {"meta": {"n": 1.0}}}


def a_root_of_each_kind() -> bytes:
    doc = Doc()
    doc["text"] = Text("hi")
    doc["map"] = Map({"k": 1})
    doc["array"] = Array([1, "s"])
    doc["types"] = Array([Map({"x": 1}), Text("t")])
    doc["xml"] = XmlFragment()
    doc["xml"].children.append(XmlElement("p", {}, [XmlText("para")]))
    embed = doc["embed"] = Text()
    embed.insert_embed(0, {"image": "x.png"})
    emptied = doc["emptied"] = Text("gone")
    del emptied[0:4]
    return doc.get_update()


@pytest.mark.parametrize(("root", "kinds"), [
    ("text", {"text"}), ("map", {"map"}), ("array", {"array"}), ("types", {"array"}),
    ("xml", {"xml"}), ("embed", {"text"}), ("emptied", {"text", "map", "array", "xml"}),
])
def test_root_kinds_from_content(root, kinds):
    doc = Doc()
    doc.apply_update(a_root_of_each_kind())  # as the server holds it: roots untyped
    assert root_kinds(doc, root) == kinds


def test_json_view_refuses_absent_and_mistyped_roots_without_touching_the_update():
    update = a_root_of_each_kind()
    with pytest.raises(UnknownRoot, match="'nosuch'"):
        json_view(update, {"map": ["nosuch"]})
    for kind, root in [("map", "text"), ("text", "map"), ("text", "array"), ("array", "xml")]:
        with pytest.raises(WrongRootType, match=f"'{root}'"):
            json_view(update, {kind: [root]})
    assert json_view(update, {"xml": ["xml"], "array": ["types"], "text": ["emptied"]}) == {
        "xml": {"xml": "<p>para</p>"}, "array": {"types": [{"x": 1.0}, "t"]},
        "text": {"emptied": ""}}


def test_merge_many_equals_one_merge():
    updates = make_updates([(i % 3, "insert", "ab") for i in range(MERGE_FAN_IN * 3 + 5)])
    merged = Doc()
    merged.apply_update(merge_many(updates))
    reference = Doc()
    for update in updates:
        reference.apply_update(update)
    assert content(merged) == content(reference)
    assert merge_many([updates[0]]) == updates[0]
    assert merge_many([]) == b"\x00\x00"
