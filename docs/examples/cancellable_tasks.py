"""Cancellable tasks, one pattern each."""

import subprocess

from girder_worker_utils import task


@task(bind=True)
def smooth(self, frames):
    """Poll: stop at the next frame once cancelled, and return what is done."""
    done = []
    for frame in frames:
        if self.cancelled:
            break
        done.append(frame * 2)
    return done


@task(bind=True)
def register_all(self, images):
    """Raise: check_cancelled() ends the run from deep inside a loop."""
    for image in images:
        self.check_cancelled()
        print("registering", image)


@task(bind=True, cancel_grace_period=120)
def simulate(self, config_path):
    """Clean up: stop the external program as soon as the cancel arrives."""
    proc = subprocess.Popen(["simulate", config_path])
    self.on_cancel(proc.terminate)
    return proc.wait()
