"""docker_run against the docker command line: start-to-exit and streaming throughput.

    hatch run bench:docker            # needs a running Docker Engine; ~1 min

Prints, for a trivial container of a local busybox image (built as the tests
build it): the median start-to-exit of ``docker run --rm`` and of docker_run
through a real worker (publish to result), and their ratio; then MB/s of 64 MB
streamed out of a container through a NamedOutputPipe and through
ContainerStdOut, each into a host file, and the docker command line's own
stdout into a host file as the reference (with and without the engine's
json-file log, which halves to quarters it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _docker_cli(image: str, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _docker_cli_stdout(image: str, count: int, driver: str, out: Path) -> float:
    script = f"dd if=/dev/zero bs=64k count={count} 2>/dev/null"
    with open(out, "wb") as sink:
        started = time.perf_counter()
        command = ["docker", "run", "--rm", "--network", "none", "--log-driver", driver, image, "sh", "-c", script]
        subprocess.run(command, check=True, stdout=sink)
        elapsed = time.perf_counter() - started
    assert out.stat().st_size == count * 64 * 1024
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="containers per start-to-exit figure")
    parser.add_argument("--mb", type=int, default=64, help="megabytes per throughput figure")
    options = parser.parse_args()

    from girder_worker._app import create_app
    from girder_worker._config import read_config
    from girder_worker.docker.tasks import docker_run
    from girder_worker.docker.transforms import Connect, NamedOutputPipe
    from tests.docker.images import busybox_image

    image = busybox_image()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "GIRDER_WORKER_DATA_DIR": f"{tmp}/data",
            "GIRDER_WORKER_DOCKER_RUN_OPTIONS": json.dumps({"network_mode": "none"}),
            "PYTHONPATH": str(ROOT),
        }
        full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}, **env}
        log = open(f"{tmp}/worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "girder_worker", "-l", "warning", "-P", "threads", "-c", "1",
             "-I", "bench.docker_tasks"],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        app = create_app(read_config(env))
        try:
            app.send_task(docker_run.name, (image,), {"pull_image": False, "container_args": ["true"]}).get(timeout=120)
            ours = []
            for _ in range(options.n):
                started = time.perf_counter()
                r = app.send_task(docker_run.name, (image,), {"pull_image": False, "container_args": ["true"]})
                r.get(timeout=60)
                ours.append(time.perf_counter() - started)
            cli = _docker_cli(image, options.n)
            mine = statistics.median(ours)
            print(f"start-to-exit, trivial container: docker run --rm {cli * 1000:.0f} ms, "
                  f"docker_run {mine * 1000:.0f} ms, ratio {mine / cli:.2f} (goal <= 1.2)")  # fmt: skip

            size = options.mb * 1024 * 1024
            count = options.mb * 16
            for how in ("pipe", "stdout"):
                out = Path(tmp) / f"out-{how}.bin"
                if how == "pipe":
                    args = ["sh", "-c", f"dd if=/dev/zero bs=64k count={count} of=$0 2>/dev/null",
                            Connect(NamedOutputPipe("o"), _writer(str(out)))]  # fmt: skip
                    r = app.send_task(docker_run.name, (image,), {"pull_image": False, "container_args": args})
                else:
                    r = app.send_task(
                        "bench.docker_tasks.stdout_to_file",
                        (image, ["sh", "-c", f"dd if=/dev/zero bs=64k count={count} 2>/dev/null"], str(out)),
                    )
                started = time.perf_counter()
                r.get(timeout=300)
                elapsed = time.perf_counter() - started
                assert out.stat().st_size == size, (how, out.stat().st_size)
                print(f"throughput {how:6s} -> host file: {options.mb / elapsed:.0f} MB/s "
                      f"({options.mb} MB in {elapsed:.2f} s, container start included; goal >= 100)")  # fmt: skip
            # The reference: the docker command line's own stdout into a file, with the
            # engine's default log driver (json-file: the engine writes every byte to
            # its log too) and without (docker_run's choice when it removes the container).
            for driver in ("none", "json-file"):
                seconds = _docker_cli_stdout(image, count, driver, Path(tmp) / "cli.bin")
                print(f"throughput docker run --log-driver {driver} > host file: {options.mb / seconds:.0f} MB/s "
                      f"({options.mb} MB in {seconds:.2f} s, container start included)")  # fmt: skip
        finally:
            worker.kill()
            worker.wait()
            app.close()


def _writer(path: str):
    from tests.docker.streams import FileWriter

    return FileWriter(path)


if __name__ == "__main__":
    main()
