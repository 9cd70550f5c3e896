"""The prefork pool's shared cancel table: a run begun after its cancel sees it, and only its own."""

from __future__ import annotations

import uuid

from girder_worker.cancellation._shm import ID_BYTES, RING, SharedTable


def test_a_run_that_begins_after_its_cancel_starts_cancelled():
    table = SharedTable(2)
    task_id = str(uuid.uuid4())
    table.cancel(task_id)

    flag = table.begin(1, task_id)

    assert flag.is_set()
    assert flag.reason == "cancelled"


def test_an_empty_ring_cancels_nothing():
    table = SharedTable(1)

    assert not table.begin(0, str(uuid.uuid4())).is_set()


def test_only_the_whole_id_counts_not_a_part_or_an_extension_of_it():
    table = SharedTable(1)
    table.cancel("task-12")
    table.cancel("abc")

    assert not table.begin(0, "task-1").is_set()  # a part of a cancelled id
    table.end(0)
    assert not table.begin(0, "abcd").is_set()  # a cancelled id is a part of it
    table.end(0)
    assert not table.begin(0, "bc").is_set()  # inside an entry, not at its start
    table.end(0)
    assert table.begin(0, "abc").is_set()


def test_bytes_across_two_entries_are_no_id():
    table = SharedTable(1)
    table.cancel("a" * (ID_BYTES - 8))  # its entry ends with 8 NUL bytes
    table.cancel("b" * ID_BYTES)
    across = "\0" * 8 + "b" * 10  # the end of one entry and the start of the next

    assert not table.begin(0, across).is_set()


def test_the_ring_keeps_the_latest_cancels():
    table = SharedTable(1)
    ids = [str(uuid.uuid4()) for _ in range(RING + 10)]
    for task_id in ids:
        table.cancel(task_id)

    assert not table.begin(0, ids[0]).is_set()  # written over by the eleventh after it
    table.end(0)
    assert table.begin(0, ids[10]).is_set()
    table.end(0)
    assert table.begin(0, ids[-1]).is_set()


def test_ids_longer_than_an_entry_compare_by_their_first_bytes():
    table = SharedTable(1)
    long_id = "x" * (ID_BYTES + 20)
    table.cancel(long_id)

    assert table.begin(0, long_id).is_set()
