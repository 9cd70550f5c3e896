"""docker_run with a bind-mounted host directory, a file in the run's temporary volume
and a result hook that reads it, run eagerly (in this process, no broker).

Run: python docker_example.py [IMAGE]   (default busybox:1.36; prints two lines)
"""

import os
import sys
import tempfile

from girder_worker.docker.tasks import docker_run
from girder_worker.docker.transforms import BindMountVolume, VolumePath
from girder_worker_utils.transform import ResultTransform


class ReadText(ResultTransform):
    """A result hook: the text of the file at a VolumePath, and where it was on the host."""

    def __init__(self, path):
        self.path = path

    def transform(self, data):
        host_path = self.path.transform(data)  # given the result: the path on the host
        with open(host_path) as handle:
            return handle.read().strip(), host_path


def main(image: str) -> None:
    os.environ["GIRDER_WORKER_TASK_ALWAYS_EAGER"] = "true"  # run in this process
    os.environ.setdefault("GIRDER_WORKER_DATA_DIR", tempfile.mkdtemp())
    os.environ.setdefault("GIRDER_WORKER_DOCKER_RUN_OPTIONS", '{"network_mode": "none"}')
    from girder_worker.app import app

    app.set_current()
    app.load_plugins()
    data = tempfile.mkdtemp()
    # The site's choice: messages may bind-mount this directory, and no other host path.
    os.environ["GIRDER_WORKER_DOCKER_HOST_PATHS"] = data
    with open(os.path.join(data, "in.csv"), "w") as handle:
        handle.write("a,b\n1,2\n3,4\n")
    count = VolumePath("count.txt")  # in the run's TemporaryVolume.default
    result = docker_run.apply_async(
        kwargs={
            "image": image,
            "pull_image": False,
            "volumes": [BindMountVolume(data, "/data", mode="ro")],
            "container_args": ["sh", "-c", "wc -l < /data/in.csv > $0", count],
        },
        headers={"girder_result_hooks": [ReadText(count)]},
    )
    [(lines, host_path)] = result.get()
    print(f"the container counted {lines} lines")
    print("the temporary volume is gone after the run:", not os.path.exists(host_path))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "busybox:1.36")
