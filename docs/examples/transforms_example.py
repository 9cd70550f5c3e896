"""Transforms and result hooks, run eagerly: no worker, no broker.

Run: python transforms_example.py   (prints three lines, see the docs page)
"""

import os
import tempfile

from girder_worker_utils import task
from girder_worker_utils.transform import ResultTransform, Transform
from girder_worker_utils.transforms.common import TemporaryDirectory


class Lines(Transform):
    """A text the task receives as a list of lines."""

    def __init__(self, text):
        self.text = text

    def transform(self):
        return self.text.splitlines()

    def _repr_model_(self):  # what a Girder job shows for this argument
        return f"Lines({len(self.text)} characters)"


class Report(ResultTransform):
    """A result hook: the task's result becomes a sentence."""

    def transform(self, data):
        return f"{data} line(s) written"


@task
def write_lines(lines, workdir):
    path = os.path.join(workdir, "out.txt")
    with open(path, "w") as handle:
        handle.write("\n".join(lines))
    print("the task sees", lines, "and a directory that exists:", os.path.isdir(workdir))
    return len(lines), workdir  # the hooks follow the returned values by position


def main() -> None:
    os.environ["GIRDER_WORKER_TASK_ALWAYS_EAGER"] = "true"  # run in this process
    os.environ.setdefault("GIRDER_WORKER_DATA_DIR", tempfile.mkdtemp())
    from girder_worker.app import app

    app.set_current()
    result = write_lines.apply_async(
        (Lines("first\nsecond"), TemporaryDirectory()),
        headers={"girder_result_hooks": [Report()]},
    )
    sentence, workdir_path = result.get()
    print(sentence)
    print("the directory is gone after the run:", not os.path.exists(workdir_path))


if __name__ == "__main__":
    main()
