"""Publish while the broker is down: after its retry window the client gets an error.

The broker here is a RabbitMQ address where nothing listens. The client retries for
connect_retries_timeout seconds (girder-worker's default is 10; 2 here, to keep the
example short) and then raises kombu's OperationalError: the task was not sent, and
the caller decides what to do (here: report it and give up).

Run: python publish_during_outage.py [PORT]
"""

import socket
import sys
import time

from kombu.exceptions import OperationalError

from girder_worker._app import create_app
from girder_worker._config import read_config


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(port: int) -> None:
    app = create_app(
        read_config(
            {
                "GIRDER_WORKER_BROKER": f"amqp://guest:guest@127.0.0.1:{port}//",
                "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": '{"connect_retries_timeout": 2}',
            }
        )
    )
    began = time.monotonic()
    try:
        app.send_task("gwexample.analyses.tasks.fibonacci", args=[20], task_id="example-1")
    except OperationalError as exc:
        print(f"task example-1 was not sent: {type(exc).__name__}: {exc}")
        print(f"the client retried for {time.monotonic() - began:.0f} s; publish it again once the broker is back")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else unused_port())
