"""A task with a soft and a hard time limit, which saves its work when the soft one passes."""

import time
from pathlib import Path

from girder_worker_utils import task


@task(bind=True, soft_time_limit=2, time_limit=4)
def render(self, frames, out_dir):
    """Render frames until the soft limit; then save what is done, within the hard one."""
    done = 0
    while done < frames:
        if self.cancelled:
            summary = f"{self.cancel_reason}: saved {done} of {frames} frames\n"
            Path(out_dir, "partial.txt").write_text(summary)
            return done
        time.sleep(0.05)  # render one frame
        done += 1
    return done
