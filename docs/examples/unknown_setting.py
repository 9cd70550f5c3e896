"""A misspelt upper-case setting: stored, ignored by Celery, and reported.

Run: python unknown_setting.py [DATA_DIR]
(prints None, after an UnknownSettingWarning on stderr that names the key)
"""

import sys
import tempfile

from girder_worker._app import create_app
from girder_worker._config import read_config


def main(data_dir: str) -> None:
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": data_dir}))

    # TASK_TIME_LIMITS is no Celery setting (task_time_limit is).
    app.config.update({"TASK_TIME_LIMITS": 300})

    # So no time limit was set.
    print(app.conf.task_time_limit)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
