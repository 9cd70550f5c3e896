"""The last lines a failed run's message shows, after any amount of output (no engine needed)."""

from __future__ import annotations

from girder_worker.docker._output import TAIL_LINES, Tail


def test_the_last_lines_after_megabytes_written_in_pieces_that_split_lines_and_characters():
    tail = Tail()
    data = "".join(f"ligne {i} é\n" for i in range(200_000)).encode()
    for start in range(0, len(data), 65_531):  # pieces that cut lines and 2-byte characters
        tail.write(data[start : start + 65_531])

    assert tail.text().splitlines() == [f"ligne {i} é" for i in range(200_000 - TAIL_LINES, 200_000)]


def test_a_last_line_without_a_newline_counts_and_long_lines_are_cut():
    tail = Tail()
    tail.write(b"x" * 5000 + b"\nfirst\nno newline")

    assert tail.text() == "x" * 1000 + "\nfirst\nno newline"


def test_one_endless_line_shows_its_end():
    tail = Tail()
    for _ in range(100):
        tail.write(b"abc" * 10_000)

    assert tail.text() == ("abc" * 400)[-1000:]


def test_nothing_printed_is_empty():
    assert Tail().text() == ""
