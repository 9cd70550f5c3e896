"""Run the example plugin's task without a worker or a broker.

With GIRDER_WORKER_TASK_ALWAYS_EAGER=true a task runs in the calling process,
which is how a plugin's tests can call its tasks.

Run: python eager_fibonacci.py [DATA_DIR]   (prints 6765)
"""

import sys
import tempfile

from girder_worker._app import create_app
from girder_worker._config import read_config
from gwexample.analyses.tasks import fibonacci


def main(data_dir: str) -> None:
    app = create_app(read_config({"GIRDER_WORKER_TASK_ALWAYS_EAGER": "true", "GIRDER_WORKER_DATA_DIR": data_dir}))
    # What the worker does when it starts: construct every installed plugin with
    # the app and import the task modules it names.
    app.load_plugins()

    print(fibonacci.delay(20).get())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
