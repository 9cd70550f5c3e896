"""Tasks and a plugin-declared transform for the transform and wire-format tests."""

import os
import sys
import tempfile

from girder_worker_utils import task
from girder_worker_utils.transform import ResultTransform, Transform


class Suffix(Transform):
    """A plugin's own transform: the task receives ``text + '!'``; cleanup leaves a file."""

    def __init__(self, text, cleanup_marker=None):
        self.text = text
        self.cleanup_marker = cleanup_marker

    def transform(self):
        return self.text + "!"

    def cleanup(self):
        if self.cleanup_marker:
            with open(self.cleanup_marker, "w") as handle:
                handle.write("cleaned")


class Shout(ResultTransform):
    """A result hook: the result upper-cased; a failure leaves a file."""

    def __init__(self, failure_marker=None):
        self.failure_marker = failure_marker

    def transform(self, data):
        return str(data).upper()

    def exception(self):
        if self.failure_marker:
            with open(self.failure_marker, "w") as handle:
                handle.write("failed")


@task(name="gwtest.echo")
def echo(*args, **kwargs):
    return [list(args), kwargs]


@task(name="gwtest.read_text")
def read_text(path):
    with open(path) as handle:
        return handle.read()


@task(name="gwtest.write_text")
def write_text(text, name="result.txt"):
    path = os.path.join(tempfile.mkdtemp(), name)
    with open(path, "w") as handle:
        handle.write(text)
    return path


@task(name="gwtest.modules")
def modules(names):
    """Which of ``names`` this worker process has imported."""
    return {name: name in sys.modules for name in names}


@task(name="gwtest.copy_file")
def copy_file(path, name="copy.txt"):
    """A copy of the file at ``path`` (a downloaded Girder file), for an upload hook."""
    copy = os.path.join(tempfile.mkdtemp(), name)
    with open(path, "rb") as source, open(copy, "wb") as target:
        target.write(source.read())
    return copy


@task(name="gwtest.leak", bind=True)
def leak(self, url):
    """Fail the way a Girder call fails: the URL (with its ?token=) and the run's token in the message."""
    raise RuntimeError(f"GET {url} failed for token {self.request.girder_client_token}")
