"""Tasks for the integration tests: each does one observable thing."""

import os
import time
from pathlib import Path

from girder_worker_utils import task


@task(name="gwtest.add")
def add(x, y):
    return x + y


@task(name="gwtest.whoami", bind=True)
def whoami(self, pause=0.0):
    time.sleep(pause)
    return {"hostname": self.request.hostname, "pid": os.getpid()}


@task(name="gwtest.touch")
def touch(path):
    Path(path).write_text("ran\n")
    return path


@task(name="gwtest.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds
