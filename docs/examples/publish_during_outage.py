"""Publish while the broker is down: after its publish window the client gets one line.

The broker here is a RabbitMQ address where nothing listens. The client retries for
connect_retries_timeout seconds (girder-worker's default is 10; 2 here, to keep the
example short) and then raises girder_worker.PublishError: the task was not sent, and
the caller decides what to do (here: report it and give up).

Run: python publish_during_outage.py [PORT]
"""

import os
import socket
import sys
import time


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(port: int) -> None:
    # A client reads its configuration when it first imports girder_worker.app.
    os.environ["GIRDER_WORKER_BROKER"] = f"amqp://guest:guest@127.0.0.1:{port}//"
    os.environ["GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS"] = '{"connect_retries_timeout": 2}'
    from girder_worker import PublishError
    from girder_worker.app import app

    began = time.monotonic()
    try:
        app.send_task("gwexample.analyses.tasks.fibonacci", args=[20], task_id="example-1")
    except PublishError as exc:
        print(exc)
        print(f"the client retried for {time.monotonic() - began:.0f} s; publish it again once the broker is back")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else unused_port())
