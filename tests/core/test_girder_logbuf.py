"""LogBuffer: progress bars collapsed, entries sized for Girder, output bounded."""

from __future__ import annotations

from girder_worker.girder._logbuf import COMPACT_AFTER, GIRDER_SLICE_CHARS, LogBuffer


def send_all(buffer: LogBuffer, final: bool) -> list:
    sent = []
    while (entry := buffer.stage(final)) is not None:
        sent.append(entry)
        buffer.commit()
    return sent


def test_carriage_returns_keep_the_last_state_of_a_line():
    buffer = LogBuffer(10_000)
    for i in range(101):
        buffer.write(f"\rdownloading {i}%")
    buffer.write("\n")
    buffer.write("line with windows ending\r\n")

    [entry] = send_all(buffer, final=False)

    assert entry.text == "downloading 100%\nline with windows ending\n"


def test_a_line_being_redrawn_is_held_back_until_it_ends():
    buffer = LogBuffer(10_000)
    buffer.write("done\n")
    buffer.write("\r10%")
    buffer.write("\r20%")

    assert [e.text for e in send_all(buffer, final=False)] == ["done\n"]
    assert [e.text for e in send_all(buffer, final=True)] == ["20%"]


def test_a_plain_unfinished_line_is_sent_as_it_is():
    buffer = LogBuffer(10_000)
    buffer.write("Enter a number: ")

    assert [e.text for e in send_all(buffer, final=False)] == ["Enter a number: "]


def test_a_staged_entry_stays_the_same_until_committed():
    buffer = LogBuffer(10_000)
    buffer.write("a\n")
    first = buffer.stage(False)
    buffer.write("b\n")

    assert buffer.stage(False) is first
    buffer.commit()
    assert buffer.stage(False).text == "b\n"


def test_entries_shrink_as_they_grow_in_number_so_girder_never_cuts_them():
    buffer = LogBuffer(100_000_000)
    appended = 0
    for _ in range(300):
        buffer.write("x" * 100_000 + "\n")
        while (entry := buffer.stage(False)) is not None:
            if not entry.overwrite:
                # Girder keeps the last 4 MiB // len(entry) entries: this one and all before it.
                assert buffer._entries + 1 <= GIRDER_SLICE_CHARS // len(entry.text)
                appended += 1
            buffer.commit()
    assert appended > COMPACT_AFTER


def test_after_many_entries_the_log_is_replaced_by_one():
    buffer = LogBuffer(1_000_000)
    for i in range(COMPACT_AFTER):
        buffer.write(f"line {i}\n")
        send_all(buffer, final=False)
    buffer.write("one more\n")

    [entry] = send_all(buffer, final=False)

    assert entry.overwrite
    assert entry.text == "".join(f"line {i}\n" for i in range(COMPACT_AFTER)) + "one more\n"


def test_output_beyond_the_limit_keeps_its_head_and_tail():
    buffer = LogBuffer(10_000)
    for i in range(10_000):
        buffer.write(f"line {i:05}\n")
    running = send_all(buffer, final=False)

    assert "".join(e.head for e in running) == "".join(f"line {i:05}\n" for i in range(10_000))[:5_000]
    assert "the rest is held back" in running[-1].text

    [final] = send_all(buffer, final=True)
    assert final.overwrite
    assert final.text.startswith("line 00000\n")
    assert final.text.endswith("line 09999\n")
    assert "characters of output left out here; a job log keeps at most 10,000]\n" in final.text
    assert len(final.text) < 10_000 + 100
    assert buffer.stage(True) is None


def test_one_huge_write_is_bounded_too():
    buffer = LogBuffer(10_000)
    buffer.write("y" * 50_000_000 + "\n")

    assert buffer.footprint() <= 10_000
