"""Publish a batch of tasks to RabbitMQ, then make sure RabbitMQ has taken every one.

A publish returns before RabbitMQ's confirm for its message arrives: up to
GIRDER_WORKER_PUBLISH_WINDOW messages (64) wait for theirs while the client goes on.
app.confirm_published() waits for all of them, publishes again what a broken connection
left unconfirmed, and raises girder_worker.PublishError, naming the tasks, for what
RabbitMQ refused. The queue here holds at most 3 messages and refuses more
(x-overflow reject-publish), so RabbitMQ refuses the last two of five.

Run: python confirm_published.py [QUEUE]   (GIRDER_WORKER_BROKER: a RabbitMQ)
"""

import os
import sys

from kombu import Exchange, Queue


def main(name: str) -> None:
    os.environ.setdefault("GIRDER_WORKER_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
    from girder_worker import PublishError
    from girder_worker.app import app

    queue = Queue(name, Exchange(name), name, queue_arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    for i in range(5):
        app.send_task("gwexample.analyses.tasks.fibonacci", args=[20], queue=queue, task_id=f"example-{i}")
    print("published 5 tasks")
    try:
        app.confirm_published()
        print("RabbitMQ has them all")
    except PublishError as exc:
        print(exc)
    with app.connection_for_write() as conn:  # the example's queue goes away again
        conn.default_channel.queue_delete(name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "confirm-published-example")
