"""The main job: a girder-worker on the embedded broker, and the example client.

Starts ``girder-worker`` with a fresh data directory, waits until it is ready,
runs ``packages/gwexample/example_client.py`` (which prints 121393), then stops
the worker. Exits with the client's status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="girder-worker-demo-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}
        env["GIRDER_WORKER_DATA_DIR"] = data_dir
        log_path = Path(data_dir) / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "girder_worker", "-l", "info", "-P", "solo"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while " ready." not in log_path.read_text():
                if worker.poll() is not None or time.monotonic() > deadline:
                    sys.stderr.write(log_path.read_text())
                    print("demo: the worker did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            print(f"demo: worker ready on the embedded broker ({data_dir})", file=sys.stderr)
            client = subprocess.run(
                [sys.executable, str(ROOT / "packages/gwexample/example_client.py")], env=env, check=False
            )
            return client.returncode
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            print("demo: worker stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
