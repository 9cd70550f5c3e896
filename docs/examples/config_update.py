"""A plugin's configuration change, as the plugin guide shows it.

Run: python config_update.py [DATA_DIR]   (prints 300)
"""

import sys
import tempfile

from girder_worker._app import create_app
from girder_worker._config import read_config


def main(data_dir: str) -> None:
    # An app of its own, on an embedded broker in data_dir, whatever GIRDER_WORKER_*
    # says in this shell.
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": data_dir}))

    # What a plugin's constructor does: an upper-case Celery setting name works.
    app.config.update({"TASK_TIME_LIMIT": 300})

    # app.config is app.conf, where Celery reads task_time_limit.
    print(app.conf.task_time_limit)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
