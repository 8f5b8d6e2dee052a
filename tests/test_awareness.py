"""The awareness table and relay budget as plain data: clocks, ownership of client ids,
bounds per connection and per document, and coalescing past the relay budget."""

import json

import pytest

from collab.actors import awareness
from collab.actors.awareness import (
    MAX_BYTES,
    MAX_BYTES_PER_OWNER,
    MAX_CLIENTS_PER_OWNER,
    AwarenessRelay,
    AwarenessTable,
)
from collab.errors import AwarenessTooLarge
from collab.protocol.ywire import AwarenessEntry, decode_awareness

#: y-protocols' largest clock: a forger's way to win every comparison.
MAX_CLOCK = 2**53 - 1


def state(**fields) -> str:
    return json.dumps(fields)


def test_newer_clock_wins_and_owner_removal():
    table = AwarenessTable()
    assert table.apply([AwarenessEntry(1, 1, '{"a":1}')], owner="c1").accepted
    assert not table.apply([AwarenessEntry(1, 1, '{"a":2}')], owner="c1").accepted  # same clock
    assert table.apply([AwarenessEntry(1, 2, '{"a":3}')], owner="c1").accepted
    table.apply([AwarenessEntry(2, 1, '{"b":1}')], owner="c2")
    assert len(table) == 2
    removals = table.remove_owner("c1")
    assert removals == [AwarenessEntry(1, 2, "null")]
    # The same client reconnects at its old clock; its next change wins.
    assert table.apply([AwarenessEntry(1, 3, '{"a":4}')], owner="c3").accepted
    assert table.states() == {1: '{"a":4}', 2: '{"b":1}'}
    table.remove_owner("c3")
    assert decode_awareness(table.encode_all()) == [AwarenessEntry(2, 1, '{"b":1}')]


def test_equal_clock_removal_is_accepted():
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 4, "{}")], owner="c")
    assert table.apply([AwarenessEntry(1, 4, "null")], owner="c").accepted
    assert table.encode_all() is None and table.remove_owner("c") == []


def test_another_connections_client_id_cannot_be_overwritten_or_removed():
    table = AwarenessTable()
    table.apply([AwarenessEntry(7, 3, state(name="victim"))], owner="victim")
    forged = table.apply([AwarenessEntry(7, MAX_CLOCK, state(name="forged")),
                          AwarenessEntry(8, 1, state(name="forger"))], owner="forger")
    assert forged.accepted == [AwarenessEntry(8, 1, state(name="forger"))]
    assert forged.foreign == 1
    hidden = table.apply([AwarenessEntry(7, MAX_CLOCK, "null")], owner="forger")
    assert hidden.accepted == [] and hidden.foreign == 1
    assert table.states()[7] == state(name="victim")
    # The victim's own next change still goes through, at its own clock.
    assert table.apply([AwarenessEntry(7, 4, state(name="victim", x=1))],
                       owner="victim").accepted
    # Its close frees the id: a removal at the clock it had, broadcast to the others.
    assert table.remove_owner("victim") == [AwarenessEntry(7, 4, "null")]
    assert table.remove_owner("forger") == [AwarenessEntry(8, 1, "null")]


def test_a_reconnect_takes_its_id_back_and_its_own_removal_works():
    table = AwarenessTable()
    table.apply([AwarenessEntry(5, 10, state(name="ann"))], owner="socket-1")
    table.remove_owner("socket-1")  # the old connection closed
    assert table.apply([AwarenessEntry(5, 11, state(name="ann"))], owner="socket-2").accepted
    assert table.apply([AwarenessEntry(5, 12, state(name="ann"))],
                       owner="socket-1").foreign == 1  # a late frame of the old socket
    # Its own removal (state null, clock + 1, as y-protocols sends on leaving).
    assert table.apply([AwarenessEntry(5, 12, "null")], owner="socket-2").accepted
    assert len(table) == 0 and table.remove_owner("socket-2") == []
    # A removal of an id nobody holds changes nothing (a forger cannot raise its clock).
    assert not table.apply([AwarenessEntry(5, MAX_CLOCK, "null")], owner="x").accepted
    assert table.apply([AwarenessEntry(5, 13, state(name="ann"))], owner="socket-3").accepted


def test_one_connection_is_bounded_in_clients_and_bytes():
    table = AwarenessTable()
    many = [AwarenessEntry(i, 1, "{}") for i in range(MAX_CLIENTS_PER_OWNER + 1)]
    with pytest.raises(AwarenessTooLarge):
        table.apply(many, owner="greedy")
    assert len(table) == 0  # nothing applied
    big = state(name="x" * 15_000)
    fits = MAX_BYTES_PER_OWNER // len(big)
    table.apply([AwarenessEntry(i, 1, big) for i in range(fits)], owner="greedy")
    with pytest.raises(AwarenessTooLarge):
        table.apply([AwarenessEntry(fits, 1, big)], owner="greedy")
    # Others are not bounded by its budget.
    assert table.apply([AwarenessEntry(999, 1, big)], owner="other").accepted
    with pytest.raises(AwarenessTooLarge):
        table.apply([AwarenessEntry(1, 1, "x" * 100)], owner="x", max_state_bytes=99)


def test_a_full_document_ignores_new_states_but_lets_known_ones_move():
    table = AwarenessTable()
    big = state(name="x" * 15_000)
    per_owner = MAX_BYTES_PER_OWNER // len(big)
    owner = 0
    while table.live_bytes + len(big) <= MAX_BYTES:
        table.apply([AwarenessEntry(owner * 100 + i, 1, big) for i in range(per_owner)
                     if table.live_bytes + (i + 1) * len(big) <= MAX_BYTES], owner=owner)
        owner += 1
    filler = '"' + "f" * (MAX_BYTES - table.live_bytes - 2) + '"'  # a JSON string
    table.apply([AwarenessEntry(10**5, 1, filler)], owner="filler")
    assert table.live_bytes == MAX_BYTES
    newcomer = table.apply([AwarenessEntry(10**6, 1, state(name="newcomer"))], owner="new")
    assert newcomer.accepted == [] and newcomer.crowded == 1  # ignored, not an error
    # A known state may shrink, or change within its size.
    assert table.apply([AwarenessEntry(0, 2, state(name="y" * 15_000))], owner=0).accepted
    assert table.apply([AwarenessEntry(1, 2, "{}")], owner=0).accepted
    assert table.apply([AwarenessEntry(10**6, 1, state(name="newcomer"))],
                       owner="new").accepted  # room again


def test_removed_entries_make_room_when_the_table_is_full(monkeypatch):
    monkeypatch.setattr(awareness, "MAX_CLIENTS", 4)
    table = AwarenessTable()
    table.apply([AwarenessEntry(i, 1, "{}") for i in range(3)], owner="a")
    table.remove_owner("a")  # three removed entries remembered
    table.apply([AwarenessEntry(10, 1, "{}")], owner="b")
    assert table.apply([AwarenessEntry(11, 1, "{}"), AwarenessEntry(12, 1, "{}")],
                       owner="c").accepted  # displacing the oldest removed ones
    assert len(table._entries) == 4
    table.apply([AwarenessEntry(13, 1, "{}")], owner="d")
    crowded = table.apply([AwarenessEntry(14, 1, "{}")], owner="e")
    assert crowded.crowded == 1 and len(table) == 4


def test_the_relay_sends_within_its_budget_then_holds_and_coalesces():
    relay = AwarenessRelay(rate=100, burst=200, now=0.0)
    assert relay.offer([1], 150, now=0.0)
    assert not relay.offer([2], 100, now=0.0)  # over the burst: held
    assert not relay.offer([1], 10, now=0.0)  # something is held: everything waits
    assert list(relay.held) == [2, 1]
    assert relay.due(110, now=0.0) == pytest.approx(0.6)
    assert relay.due(110, now=0.6) == 0
    relay.release(110, now=0.6)
    assert not relay.held and not relay.offer([3], 10, now=0.6)
    relay.held.clear()
    assert relay.offer([3], 10, now=1.0)
    # A release bigger than a burst is counted whole: the next one waits for it.
    assert relay.due(500, now=10.0) == 0
    relay.release(500, now=10.0)
    assert relay.due(10, now=10.0) == pytest.approx(3.1)
