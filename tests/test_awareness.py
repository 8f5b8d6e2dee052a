from collab.actors.awareness import AwarenessTable
from collab.protocol.ywire import AwarenessEntry, decode_awareness


def test_newer_clock_wins_and_owner_removal():
    table = AwarenessTable()
    assert table.apply([AwarenessEntry(1, 1, '{"a":1}')], owner="c1")
    assert not table.apply([AwarenessEntry(1, 1, '{"a":2}')], owner="c1")  # same clock
    assert table.apply([AwarenessEntry(1, 2, '{"a":3}')], owner="c1")
    table.apply([AwarenessEntry(2, 1, '{"b":1}')], owner="c2")
    assert len(table) == 2
    removals = table.remove_owner("c1")
    assert removals == [AwarenessEntry(1, 2, "null")]
    # The same client reconnects at its old clock; its next change wins.
    assert table.apply([AwarenessEntry(1, 3, '{"a":4}')], owner="c3")
    assert table.states() == {1: '{"a":4}', 2: '{"b":1}'}
    table.remove_owner("c3")
    assert decode_awareness(table.encode_all()) == [AwarenessEntry(2, 1, '{"b":1}')]


def test_equal_clock_removal_is_accepted():
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 4, "{}")], owner="c")
    assert table.apply([AwarenessEntry(1, 4, "null")], owner="c")
    assert table.encode_all() is None and table.remove_owner("c") == []
