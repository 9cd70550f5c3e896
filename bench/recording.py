"""The body of ``bench/faults.py``'s ``record`` task, shared by both sides.

Both task modules (``bench/gw_bench_tasks.py`` and ``bench/plain_app.py``) wrap
:func:`record_run` in a task of their own app, so the two sides run the same code.
"""

from __future__ import annotations

import os
import time

STEP_SECONDS = 0.05


def record_run(path: str, task_id: str, seconds: float) -> int:
    """Append ``start ID PID TIME`` to ``path``, sleep ``seconds`` in 50 ms steps,
    append ``end ID PID TIME``; return this process's pid.

    A run killed in between leaves its ``start`` line without an ``end``.
    """
    _append(path, "start", task_id)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(STEP_SECONDS)
    _append(path, "end", task_id)
    return os.getpid()


def _append(path: str, event: str, task_id: str) -> None:
    # One short write in append mode: lines of concurrent runs do not interleave.
    with open(path, "a") as f:
        f.write(f"{event} {task_id} {os.getpid()} {time.time():.6f}\n")
