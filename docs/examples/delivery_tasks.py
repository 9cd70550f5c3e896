"""Two tasks, two delivery policies."""

import time
from pathlib import Path

from girder_worker_utils import task


@task(bind=True, max_deliveries=3)
def render_tiles(self, slide, out_dir):
    """Safe to run again: a second run rewrites the same files.

    It takes the worker's default policy, at-least-once, and may start three times.
    """
    for level in range(4):
        time.sleep(0.5)  # stands for the real work
        (Path(out_dir) / f"{slide}-{level}.png").write_text(f"level {level}\n")
    return 4


@task(bind=True, delivery="at-most-once")
def charge_account(self, account, amount, ledger):
    """Not safe to run again: a second run would charge twice."""
    time.sleep(2)  # stands for talking to the billing system
    with open(ledger, "a") as f:
        f.write(f"{account} {amount}\n")
    return amount
