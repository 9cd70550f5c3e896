"""A thread that runs a pool child's cancel callbacks when its flag goes up."""

from __future__ import annotations

import threading
from typing import Any

from girder_worker_utils.worker import run_cancel_callback

POLL_SECONDS = 0.01


def watch(flag: Any) -> threading.Event:
    """Poll ``flag`` until it is set (then run its callbacks) or the event is set."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(POLL_SECONDS):
            if flag.is_set():
                for callback in flag.take_callbacks():
                    run_cancel_callback(callback)
                return

    threading.Thread(target=loop, name="girder-worker-cancel-watch", daemon=True).start()
    return done
