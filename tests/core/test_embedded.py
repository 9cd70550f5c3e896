"""The embedded broker: each message is delivered once, whole, to one consumer."""

from __future__ import annotations

import threading

from kombu import Connection, Exchange, Queue

from girder_worker._config import embedded_settings


def connection(data_dir):
    settings = embedded_settings(data_dir)
    return Connection(
        settings["broker_url"],
        transport=settings["broker_transport"],
        transport_options=settings["broker_transport_options"],
    )


def test_competing_consumers_each_get_distinct_whole_messages(tmp_path):
    queue = Queue("race", Exchange("race", type="direct"), routing_key="race")
    with connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")
        for i in range(300):
            producer.publish({"n": i, "pad": "x" * 2000}, exchange=queue.exchange, routing_key="race", declare=[queue])

    received: list[int] = []
    lock = threading.Lock()

    def consume():
        with connection(tmp_path) as conn, conn.SimpleQueue(queue) as simple:
            while True:
                try:
                    message = simple.get(timeout=0.5)
                except simple.Empty:
                    return
                assert message.payload["pad"] == "x" * 2000
                message.ack()
                with lock:
                    received.append(message.payload["n"])

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(received) == list(range(300))


def test_banner_uri_names_the_data_directory(tmp_path):
    with connection(tmp_path) as conn:
        assert conn.as_uri() == f"filesystem://{tmp_path}/broker"
