"""Send a task message larger than GIRDER_WORKER_MAX_MESSAGE_BYTES: the client refuses it.

Nothing reaches the broker, so no worker and no broker connection suffers; the error
names the size and the variable. Smaller messages go out as usual.

Run: python oversized_message.py [DATA_DIR]
"""

import sys
import tempfile

from girder_worker import MessageTooLargeError
from girder_worker._app import create_app
from girder_worker._config import read_config


def main(data_dir: str) -> None:
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": data_dir, "GIRDER_WORKER_MAX_MESSAGE_BYTES": "1048576"}))
    samples = list(range(200_000))  # 1.5 MB as JSON: better a Girder file id
    try:
        app.send_task("gwexample.analyses.tasks.fibonacci", args=[samples], task_id="example-1")
    except MessageTooLargeError as exc:
        print(exc)
    app.send_task("gwexample.analyses.tasks.fibonacci", args=[20], task_id="example-2")
    print("a message within the limit was sent")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
