"""Restoring a version: the update `restoring_update` makes, applied to the current
state, gives every root the version's content, with small edits, by one fresh client,
and merges with concurrent edits."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.actors.restore import (
    MAX_DEPTH,
    NotAnUpdate,
    Unrestorable,
    restoring_update,
)
from collab.actors.ydoc import EMPTY_UPDATE
from collab.protocol.yupdate import read_delete_set, read_layout
from collab.protocol.ywire import decode_state_vector

#: The roots of the fuzzed documents, by the type their clients read them as.
ROOTS = {"text": Text, "map": Map, "list": Array, "xml": XmlFragment}


# -- helpers ---------------------------------------------------------------------------


def render(value) -> object:
    """The whole content of a shared value, formatting and XML attributes included."""
    if isinstance(value, Map):
        return {key: render(item) for key, item in value.items()}
    if isinstance(value, Array):
        return [render(item) for item in value]
    if isinstance(value, Text | XmlText):
        delta = joined([(render(chunk), attrs or {}) for chunk, attrs in value.diff()])
        return delta if isinstance(value, Text) else ("xmltext", delta, dict(value.attributes))
    if isinstance(value, XmlElement):
        return (value.tag, dict(value.attributes), [render(child) for child in value.children])
    if isinstance(value, XmlFragment):
        return [render(child) for child in value.children]
    if isinstance(value, Doc):
        return ("subdocument", value.guid)
    return value


def joined(delta: list[tuple[object, dict]]) -> list[tuple[object, dict]]:
    """`delta` with neighbouring strings of one formatting joined: how a text's items
    are cut is not its content (a format mark that changes nothing cuts one)."""
    out: list[tuple[object, dict]] = []
    for chunk, attrs in delta:
        if out and isinstance(chunk, str) and isinstance(out[-1][0], str) and out[-1][1] == attrs:
            out[-1] = (out[-1][0] + chunk, attrs)
        else:
            out.append((chunk, attrs))
    return out


def content(update: bytes, roots: dict[str, type] = ROOTS) -> dict[str, object]:
    doc = Doc()
    doc.apply_update(update)
    return {name: render(doc.get(name, type=kind)) for name, kind in roots.items()}


def typed(value: object) -> str:
    """`value` as JSON: in Python True == 1 == 1.0, in a document they differ."""
    return json.dumps(value, sort_keys=True)


def apply(*updates: bytes) -> bytes:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc.get_update()


def restored(current: bytes, version: bytes) -> bytes:
    return apply(current, restoring_update(current, version))


def deleted(update: bytes) -> dict[int, list[tuple[int, int]]]:
    return read_delete_set(update, read_layout(update).delete_set)


def clocks(ranges: dict[int, list[tuple[int, int]]]) -> set[tuple[int, int]]:
    return {(client, clock) for client, spans in ranges.items()
            for start, length in spans for clock in range(start, start + length)}


def writers(update: bytes) -> set[int]:
    return {block.client for block in read_layout(update).blocks}


def edited(build, edit) -> tuple[bytes, bytes]:
    """(version, current): `build(doc)` makes the version, `edit(doc)` the rest."""
    doc = Doc(client_id=1)
    build(doc)
    version = doc.get_update()
    edit(doc)
    return version, doc.get_update()


# -- one type at a time ----------------------------------------------------------------


def test_text_restores_characters_and_formatting():
    def build(doc):
        text = doc.get("t", type=Text)
        text.insert(0, "hello 😀 world, said the", {"bold": True})
        text.insert(len("hello 😀 world, said the".encode()), " quick fox")
        text.insert_embed(6, {"image": "a.png"}, {"width": 3})
        text.insert_embed(0, Map({"mention": "ann"}), {"bold": True})

    def edit(doc):
        text = doc.get("t", type=Text)
        del text[0:1]  # the embedded map
        text.format(0, 5, {"bold": None, "italic": True})
        del text[3:4]
        text.insert(0, "well, ", {"link": {"href": "x"}})
        del text[len(str(text).encode()) - 3:len(str(text).encode())]

    version, current = edited(build, edit)
    assert content(restored(current, version), {"t": Text}) == content(version, {"t": Text})


def test_text_edits_only_what_differs():
    doc = Doc(client_id=1)
    text = doc.get("t", type=Text)
    text.insert(0, "hello world")
    version = doc.get_update()
    text.insert(6, "brave ")  # clocks 11-16 of client 1
    text.format(0, 5, {"bold": True})
    update = restoring_update(doc.get_update(), version)
    # "brave " is deleted and nothing else: the other characters keep their items.
    assert clocks(deleted(update)) & clocks({1: [(0, 17)]}) == clocks({1: [(11, 6)]})
    assert content(apply(doc.get_update(), update), {"t": Text}) == {"t": [("hello world", {})]}


def test_text_formatting_alone_is_restored_by_formatting():
    doc = Doc(client_id=1)
    text = doc.get("t", type=Text)
    text.insert(0, "hello world", {"bold": True})
    version = doc.get_update()
    text.format(0, 5, {"bold": None})
    update = restoring_update(doc.get_update(), version)
    assert not clocks(deleted(update)) & clocks({1: [(0, 11)]})  # no character deleted
    assert content(apply(doc.get_update(), update), {"t": Text}) == {
        "t": [("hello world", {"bold": True})]}


def test_map_restores_nested_types_in_place():
    def build(doc):
        meta = doc.get("m", type=Map)
        meta["title"] = "Plan"
        meta["n"] = 1
        meta["flag"] = True
        meta["owner"] = Map({"name": "ann", "tags": Array(["a", "b"])})
        meta["notes"] = Text("first")

    def edit(doc):
        meta = doc.get("m", type=Map)
        meta["title"] = "Plan B"
        meta["flag"] = 1  # equal to True in Python, not in a document
        del meta["n"]
        meta["extra"] = {"x": [1, 2]}
        meta["owner"]["name"] = "bob"
        meta["owner"]["tags"].append("c")
        meta["notes"] = Array([1])  # another type under the same key

    version, current = edited(build, edit)
    update = restoring_update(current, version)
    after = content(apply(current, update), {"m": Map})
    assert typed(after) == typed(content(version, {"m": Map}))
    assert after["m"]["flag"] is True
    # The nested map was restored in place: an edit made inside it meanwhile survives.
    other = Doc(client_id=2)
    other.apply_update(current)
    other.get("m", type=Map)["owner"]["age"] = 30
    merged = apply(current, update, other.get_update())
    assert content(merged, {"m": Map})["m"]["owner"] == {
        "name": "ann", "tags": ["a", "b"], "age": 30.0}


def test_array_keeps_equal_items():
    doc = Doc(client_id=1)
    items = doc.get("a", type=Array)
    items.extend(list(range(10)))
    items.append(Map({"k": "v"}))
    version = doc.get_update()
    del items[3]
    items.insert(5, "x")  # clock 12 (0-9 the numbers, 10 the map, 11 its entry)
    items[10]["k"] = "w"  # clock 13
    update = restoring_update(doc.get_update(), version)
    assert content(apply(doc.get_update(), update), {"a": Array}) == content(version, {"a": Array})
    # Deleted: "x" and the map's changed entry, nothing else; the map is kept.
    assert clocks(deleted(update)) == {(1, 12), (1, 13)}
    # Inserted: the number 3 and the entry "v", nothing else.
    (block,) = read_layout(update).blocks
    assert block.end_clock - block.clock == 2


def test_array_of_primitives_distinguishes_types():
    doc = Doc(client_id=1)
    items = doc.get("a", type=Array)
    items.extend([1, True, "1", None, {"a": 1}])
    version = doc.get_update()
    items[0:0] = [True]
    del items[1]
    items.insert(0, {"a": 1.5})
    after = content(restored(doc.get_update(), version), {"a": Array})
    assert typed(after) == typed(content(version, {"a": Array}))
    assert typed(after) == '{"a": [1.0, true, "1", null, {"a": 1.0}]}'


def tiptap(doc: Doc) -> XmlFragment:
    fragment = doc.get("default", type=XmlFragment)
    heading = fragment.children.append(XmlElement("heading", {"level": 1}))
    heading.children.append(XmlText("Title"))
    para = fragment.children.append(XmlElement("paragraph"))
    words = para.children.append(XmlText("Some bold words"))
    words.format(5, 9, {"bold": {}})
    items = fragment.children.append(XmlElement("bulletList"))
    for word in ("one", "two"):
        item = items.children.append(XmlElement("listItem"))
        item.children.append(XmlElement("paragraph")).children.append(XmlText(word))
    return fragment


def test_xml_fragment_restores_a_tiptap_document():
    def edit(doc):
        fragment = doc.get("default", type=XmlFragment)
        heading, para, items = list(fragment.children)
        heading.attributes["level"] = 2
        para.children[0].insert(0, "Now ")
        para.children[0].format(0, 4, {"italic": {}})
        del items.children[0]
        items.children.append(XmlElement("listItem")).children.append(
            XmlElement("paragraph")).children.append(XmlText("three"))
        fragment.children.insert(1, XmlElement("blockquote")).children.append(XmlText("q"))
        fragment.children.append(XmlElement("heading", {"level": 3}))

    version, current = edited(tiptap, edit)
    update = restoring_update(current, version)
    assert content(apply(current, update), {"default": XmlFragment}) == content(
        version, {"default": XmlFragment})
    # The edited paragraph stays the same element: a concurrent edit inside it merges.
    other = Doc(client_id=2)
    other.apply_update(current)
    other.get("default", type=XmlFragment).children[2].children[0].insert(0, "+")
    merged = Doc()
    for part in (current, update, other.get_update()):
        merged.apply_update(part)
    assert str(merged.get("default", type=XmlFragment).children[1]) == (
        "<paragraph>+Some <bold>bold</bold> words</paragraph>")


def test_xml_node_of_another_tag_is_replaced():
    def edit(doc):
        fragment = doc.get("default", type=XmlFragment)
        del fragment.children[0]
        fragment.children.insert(0, XmlElement("paragraph")).children.append(XmlText("Title"))

    version, current = edited(tiptap, edit)
    assert content(restored(current, version), {"default": XmlFragment}) == content(
        version, {"default": XmlFragment})


# -- roots -----------------------------------------------------------------------------


def test_roots_added_and_removed():
    def build(doc):
        doc.get("kept", type=Text).insert(0, "k")
        doc.get("gone later", type=Map)["a"] = 1

    def edit(doc):
        del doc.get("gone later", type=Map)["a"]
        doc.get("new", type=Array).append(1)
        doc.get("new xml", type=XmlFragment).children.append(XmlElement("p"))
        doc.get("new text", type=Text).insert(0, "fresh")

    version, current = edited(build, edit)
    roots = {"kept": Text, "gone later": Map, "new": Array, "new xml": XmlFragment,
             "new text": Text}
    after = content(restored(current, version), roots)
    assert after == content(version, roots)
    # Roots the version lacks end empty; one the current state emptied comes back.
    assert after["new"] == [] and after["new xml"] == [] and after["new text"] == []
    assert after["gone later"] == {"a": 1.0}
    # The other way: roots only the version has are made.
    assert content(restored(version, current), roots) == content(current, roots)


def test_root_whose_kind_changed_takes_the_versions_kind():
    old = Doc(client_id=1)
    old.get("r", type=Array).extend([1, 2])
    version = old.get_update()
    del old.get("r", type=Array)[0:2]
    old.get("r", type=Text).insert(0, "now text 😀")  # the same root, written as text
    old.get("r", type=Map)["side"] = "entry"
    update = restoring_update(old.get_update(), version)
    doc = Doc()
    doc.apply_update(apply(old.get_update(), update))
    assert str(doc.get("r", type=Text)) == ""
    assert doc.get("r", type=Array).to_py() == [1.0, 2.0]
    assert doc.get("r", type=Map).to_py() == {}


def test_a_text_holding_array_values_is_refused():
    doc = Doc(client_id=1)
    doc.get("r", type=Text).insert(0, "abc")
    version = doc.get_update()
    doc.get("r", type=Array).extend([1, 2])  # values no text delta shows
    doc.get("r", type=Text).insert(0, "x")
    with pytest.raises(Unrestorable, match="array values among its characters"):
        restoring_update(doc.get_update(), version)


def test_subdocuments_are_restored_by_guid():
    doc = Doc(client_id=1)
    doc.get("m", type=Map)["sub"] = Doc(guid="first")
    doc.get("m", type=Map)["kept"] = Doc(guid="kept")
    version = doc.get_update()
    doc.get("m", type=Map)["sub"] = Doc(guid="second")
    update = restoring_update(doc.get_update(), version)
    assert content(apply(doc.get_update(), update), {"m": Map}) == {
        "m": {"sub": ("subdocument", "first"), "kept": ("subdocument", "kept")}}
    assert restoring_update(version, version) == EMPTY_UPDATE


def test_restoring_the_current_state_changes_nothing():
    def edit(doc):
        doc.get("default", type=XmlFragment).children[1].children[0].format(0, 4, {"x": 1})
        text = doc.get("t", type=Text)
        text.insert(0, "abc 😀 def", {"bold": True})
        del text[1:2]
        doc.get("m", type=Map)["k"] = Map({"deep": Array([Text("t")])})
        del doc.get("default", type=XmlFragment).children[2]

    _, current = edited(tiptap, edit)
    assert restoring_update(current, current) == EMPTY_UPDATE
    assert restoring_update(EMPTY_UPDATE, EMPTY_UPDATE) == EMPTY_UPDATE


def state_of(update: bytes) -> bytes:
    doc = Doc()
    doc.apply_update(update)
    return doc.get_state()


def test_the_restore_is_one_fresh_client():
    def edit(doc):
        del doc.get("default", type=XmlFragment).children[0]  # the restore inserts it again

    version, current = edited(tiptap, edit)
    update = restoring_update(current, version)
    assert len(writers(update)) == 1
    assert not writers(update) & set(decode_state_vector(state_of(current)))


@pytest.mark.parametrize("bad", [b"", b"\xff\xff\xff", b"hello world", b"\x01\x02"])
def test_bytes_that_are_not_an_update_are_refused(bad):
    with pytest.raises(NotAnUpdate, match="current is not a Yjs v1 update"):
        restoring_update(bad, EMPTY_UPDATE)
    with pytest.raises(NotAnUpdate, match="version is not a Yjs v1 update"):
        restoring_update(EMPTY_UPDATE, bad)


def test_a_string_is_refused():
    with pytest.raises(NotAnUpdate, match="str"):
        restoring_update("\x00\x00", EMPTY_UPDATE)  # type: ignore[arg-type]


def nested(levels: int) -> bytes:
    doc = Doc(client_id=1)
    inner = doc.get("m", type=Map)
    for _ in range(levels - 1):
        inner["m"] = Map()
        inner = inner["m"]
    inner["leaf"] = 1
    return doc.get_update()


def test_nesting_up_to_the_limit_restores_and_deeper_is_refused():
    deepest = nested(MAX_DEPTH)
    assert content(restored(EMPTY_UPDATE, deepest), {"m": Map}) == content(deepest, {"m": Map})
    with pytest.raises(Unrestorable, match="levels deep"):
        restoring_update(EMPTY_UPDATE, nested(MAX_DEPTH + 1))


def test_what_pycrdt_cannot_insert_is_refused_by_name():
    doc = Doc(client_id=1)
    doc.get("m", type=Map)["k"] = XmlFragment()
    fragment = doc.get_update()
    # Yjs lets a map hold an XmlText, pycrdt cannot insert one there: the version is
    # the same update with the nested type's ref (4, XmlFragment) made 6 (XmlText).
    xml_text = fragment.replace(b"\x01k\x04", b"\x01k\x06")
    assert xml_text != fragment
    with pytest.raises(Unrestorable, match="cannot insert a XmlText into a map"):
        restoring_update(EMPTY_UPDATE, xml_text)
    # The XmlFragment itself is restored.
    assert content(restored(EMPTY_UPDATE, fragment), {"m": Map}) == {"m": {"k": []}}


def test_a_diff_past_its_budget_replaces_the_middle():
    # difflib's worst case: one repeated letter against two alternating ones.
    doc = Doc(client_id=1)
    text = doc.get("t", type=Text)
    text.insert(0, "a" * 3000)
    version = doc.get_update()
    del text[0:3000]
    text.insert(0, "ab" * 1500)
    started = time.perf_counter()
    after = restored(doc.get_update(), version)
    assert time.perf_counter() - started < 5
    assert content(after, {"t": Text}) == {"t": [("a" * 3000, {})]}


# -- fuzz ------------------------------------------------------------------------------

SMALL = st.text(alphabet="ab é😀\n", min_size=1, max_size=5)
ATTRS = st.sampled_from([{}, {"bold": True}, {"italic": True}, {"bold": None},
                         {"link": {"href": "x"}}])
VALUES = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), SMALL,
                   st.lists(st.integers(0, 2), max_size=2))
NESTED = st.sampled_from(["map", "array", "text"])

EDIT = st.one_of(
    st.tuples(st.just("text insert"), st.integers(0, 99), SMALL, ATTRS),
    st.tuples(st.just("text delete"), st.integers(0, 99), st.integers(1, 4)),
    st.tuples(st.just("text format"), st.integers(0, 99), st.integers(1, 6), ATTRS),
    st.tuples(st.just("text embed"), st.integers(0, 99), st.sampled_from(["a", "b"])),
    st.tuples(st.just("map set"), st.sampled_from("abc"), VALUES),
    st.tuples(st.just("map nest"), st.sampled_from("abc"), NESTED),
    st.tuples(st.just("map delete"), st.sampled_from("abc")),
    st.tuples(st.just("map inner"), st.sampled_from("abc"), SMALL),
    st.tuples(st.just("list insert"), st.integers(0, 99), VALUES),
    st.tuples(st.just("list delete"), st.integers(0, 99), st.integers(1, 3)),
    st.tuples(st.just("xml insert"), st.integers(0, 99), st.sampled_from(["p", "h"]), SMALL),
    st.tuples(st.just("xml delete"), st.integers(0, 99)),
    st.tuples(st.just("xml attribute"), st.integers(0, 99), st.sampled_from(["x", "y"]),
              st.one_of(st.none(), st.sampled_from(["1", "2"]))),
    st.tuples(st.just("xml text"), st.integers(0, 99), st.integers(0, 99), SMALL, ATTRS),
)


def text_offset(text: Text | XmlText, position: int) -> tuple[int, int]:
    """(offset of unit `position` mod the unit count + 1, unit count): pycrdt's offsets
    are UTF-8 bytes, and an embed counts one."""
    sizes = []
    for chunk, _ in text.diff():
        sizes += [len(char.encode()) for char in chunk] if isinstance(chunk, str) else [1]
    position %= len(sizes) + 1
    return sum(sizes[:position]), len(sizes)


def do(doc: Doc, edit: tuple) -> None:
    """Apply one fuzzed edit to `doc`; positions are taken modulo what is there."""
    kind, *args = edit
    text, meta = doc.get("text", type=Text), doc.get("map", type=Map)
    items, xml = doc.get("list", type=Array), doc.get("xml", type=XmlFragment)
    if kind == "text insert":
        text.insert(text_offset(text, args[0])[0], args[1], args[2])
    elif kind == "text embed":
        text.insert_embed(text_offset(text, args[0])[0], {"image": args[1]})
    elif kind in ("text delete", "text format"):
        start, count = text_offset(text, args[0])
        end = text_offset(text, min(count, args[0] % (count + 1) + args[1]))[0]
        if kind == "text delete":
            del text[start:end]
        else:
            text.format(start, end, args[2])
    elif kind == "map set":
        meta[args[0]] = args[1]
    elif kind == "map nest":
        meta[args[0]] = {"map": Map, "array": Array, "text": Text}[args[1]]()
    elif kind == "map delete":
        meta.pop(args[0], None)
    elif kind == "map inner":
        inner = meta.get(args[0])
        if isinstance(inner, Map):
            inner[args[1][:1]] = args[1]
        elif isinstance(inner, Array):
            inner.append(args[1])
        elif isinstance(inner, Text):
            inner.insert(0, args[1], {"bold": True})
    elif kind == "list insert":
        items.insert(args[0] % (len(items) + 1), args[1])
    elif kind == "list delete" and len(items):
        start = args[0] % len(items)
        del items[start:min(len(items), start + args[1])]
    elif kind == "xml insert":
        node = xml.children.insert(args[0] % (len(xml.children) + 1), XmlElement(args[1]))
        node.children.append(XmlText(args[2]))
    elif kind == "xml delete" and len(xml.children):
        del xml.children[args[0] % len(xml.children)]
    elif kind == "xml attribute" and len(xml.children):
        node = xml.children[args[0] % len(xml.children)]
        if args[2] is None:
            del node.attributes[args[1]]
        else:
            node.attributes[args[1]] = args[2]
    elif kind == "xml text" and len(xml.children):
        node = xml.children[args[0] % len(xml.children)]
        if len(node.children):
            words = node.children[0]
            words.insert(text_offset(words, args[1])[0], args[2], args[3])


#: Fuzzed edits that can delete a shared type holding others' edits.
CONTAINER_DELETIONS = {"xml delete", "map set", "map nest", "map delete"}
HISTORY = st.lists(st.tuples(st.integers(0, 1), EDIT), min_size=4, max_size=40)


def base() -> bytes:
    """What the fuzzed clients start from: some of everything for edits to change."""
    doc = Doc(client_id=9)
    text = doc.get("text", type=Text)
    text.insert(0, "The quick 😀 fox", {"italic": True})
    text.insert(0, "Oh, ")
    text.format(4, 7, {"bold": True})
    meta = doc.get("map", type=Map)
    meta.update({"a": "x", "b": Map({"b": "y"}), "c": Array([1, 2])})
    doc.get("list", type=Array).extend([1, "two", None, [3]])
    xml = doc.get("xml", type=XmlFragment)
    for tag, words in (("h", "Title"), ("p", "Some words"), ("p", "More")):
        xml.children.append(XmlElement(tag, {"x": "1"})).children.append(XmlText(words))
    return doc.get_update()


BASE = base()


def history(edits: list[tuple[int, tuple]], cut: int) -> tuple[bytes, bytes]:
    """Two clients edit and exchange what they made after every fifth edit; the
    version is client 0's state after `cut` edits (modulo their number + 1), the
    current one its state after all and a last exchange."""
    docs = [Doc(client_id=10), Doc(client_id=11)]
    for doc in docs:
        doc.apply_update(BASE)
    version = docs[0].get_update()
    cut %= len(edits) + 1
    for step, (who, edit) in enumerate(edits, 1):
        do(docs[who], edit)
        if step % 5 == 0:
            exchange(*docs)
        if step == cut:
            version = docs[0].get_update()
    exchange(*docs)
    return version, docs[0].get_update()


def exchange(one: Doc, two: Doc) -> None:
    one_state, two_state = one.get_state(), two.get_state()
    one.apply_update(two.get_update(one_state))
    two.apply_update(one.get_update(two_state))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(HISTORY, st.integers(0, 40))
def test_fuzz_restore_gives_the_versions_content(edits, cut):
    version, current = history(edits, cut)
    update = restoring_update(current, version)
    assert typed(content(apply(current, update))) == typed(content(version))
    # Only new deletions: none the current state had already.
    assert not clocks(deleted(update)) & clocks(deleted(current))
    assert len(writers(update)) <= 1


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(HISTORY, st.integers(0, 40), st.lists(EDIT, min_size=1, max_size=8))
def test_fuzz_restore_converges_with_concurrent_edits(edits, cut, concurrent):
    version, current = history(edits, cut)
    update = restoring_update(current, version)
    other = Doc(client_id=12)
    other.apply_update(current)
    before = other.get_state()
    for edit in concurrent:
        do(other, edit)
    theirs = other.get_update(before)

    here, there = apply(current, update, theirs), apply(current, theirs, update)
    assert typed(content(here)) == typed(content(there))
    assert state_of(here) == state_of(there)
    # The restore's edits all hold: what it deleted is deleted, and of what it inserted
    # only what it deleted itself (format marks it replaced) is. Unless the other side
    # deleted a container the restore edited inside (an XML element, a nested type
    # under a map key): then, as for any edit, what went in with it is gone.
    restorers = writers(update)
    merged_deletions = clocks(deleted(here))
    assert clocks(deleted(update)) <= merged_deletions
    if not any(edit[0] in CONTAINER_DELETIONS for edit in concurrent):
        assert ({c for c in merged_deletions if c[0] in restorers}
                == {c for c in clocks(deleted(update)) if c[0] in restorers})
