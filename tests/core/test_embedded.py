"""The embedded broker: each message is delivered once, whole, to one consumer."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from kombu import Connection, Exchange, Queue

from girder_worker._config import ConfigError, embedded_settings, read_config


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


def test_a_publisher_racing_two_polling_consumers_loses_nothing(tmp_path):
    queue = Queue("racing", Exchange("racing", type="direct"), routing_key="racing")
    count = 400
    received: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    published = threading.Event()

    def consume():
        try:
            with connection(tmp_path) as conn, conn.SimpleQueue(queue) as simple:
                while True:
                    try:
                        message = simple.get(timeout=0.2)
                    except simple.Empty:
                        if published.is_set():
                            return
                        continue
                    message.ack()
                    with lock:
                        received.append(message.payload["n"])
        except BaseException as exc:  # FileNotFoundError, JSONDecodeError: what a torn write would cause
            errors.append(exc)

    with connection(tmp_path) as conn:
        conn.SimpleQueue(queue).close()  # declared and bound before the consumers poll
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for t in consumers:
        t.start()
    with connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")
        for i in range(count):
            producer.publish({"n": i, "pad": "y" * 5000}, exchange=queue.exchange, routing_key="racing")
    published.set()
    for t in consumers:
        t.join(timeout=60)

    assert errors == []
    assert sorted(received) == list(range(count))
    assert [p.name for p in (tmp_path / "broker" / "queue").iterdir()] == []


def test_every_folder_is_0700_and_every_file_0600_whatever_the_umask(tmp_path):
    queue = Queue("modes", Exchange("modes", type="direct"), routing_key="modes")
    old = os.umask(0)
    try:
        data = tmp_path / "data"
        with connection(data) as conn:
            conn.Producer(serializer="json").publish(
                {"n": 1}, exchange=queue.exchange, routing_key="modes", declare=[queue]
            )
    finally:
        os.umask(old)

    found = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in data.rglob("*")}
    assert found["broker/queue"] == found["results"] == found["quarantine"] == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = {name: mode for name, mode in found.items() if (data / name).is_file()}
    assert any(name.startswith("broker/queue/") for name in files)
    assert any(name.startswith("broker/control/") for name in files)
    assert set(files.values()) == {0o600}, files
    assert {mode for name, mode in found.items() if name not in files} == {0o700}


def test_a_data_dir_another_user_owns_or_may_write_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    os.chown(data, 65534, 65534)
    with pytest.raises(ConfigError) as info:
        read_config({"GIRDER_WORKER_DATA_DIR": str(data)})
    assert str(info.value).startswith(
        f"GIRDER_WORKER_DATA_DIR: the embedded broker's directory '{data}' is owned by nobody (uid 65534) with "
        "mode 0755, not by this user root (uid 0), so another user could queue tasks"
    )
    assert str(info.value).endswith(
        f"; if the files are this user's, run `chown -R root {data} && chmod -R go-rwx {data}`, else set "
        "GIRDER_WORKER_DATA_DIR to a directory of this user's own"
    )

    os.chown(data, 0, 0)
    read_config({"GIRDER_WORKER_DATA_DIR": str(data)})
    (data / "results").chmod(0o770)
    with pytest.raises(ConfigError, match=r"'.*/data/results' is writable by group \(mode 0770\)"):
        read_config({"GIRDER_WORKER_DATA_DIR": str(data)})


def test_a_backlog_is_taken_in_order_without_listing_the_folder_per_message(tmp_path, monkeypatch):
    from girder_worker.broker import _embedded

    queue = Queue("backlog", Exchange("backlog", type="direct"), routing_key="backlog")
    listings = []
    listdir = os.listdir

    def counted(path):
        listings.append(path)
        return listdir(path)

    with connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")

        def publish(numbers):
            for n in numbers:
                producer.publish({"n": n}, exchange=queue.exchange, routing_key="backlog", declare=[queue])

        publish(range(200))
        monkeypatch.setattr(_embedded.os, "listdir", counted)
        received = []
        with conn.SimpleQueue(queue) as simple:
            for _ in range(50):
                message = simple.get(timeout=1)
                message.ack()
                received.append(message.payload["n"])
            publish(range(200, 210))  # after the listing: behind the older ones
            while True:
                try:
                    message = simple.get(timeout=0.2)
                except simple.Empty:
                    break
                message.ack()
                received.append(message.payload["n"])
                if len(received) == 210:
                    taken_after = len(listings)  # the later polls of an empty queue list it, as they must

    assert received == list(range(210))  # one process's messages in the order it sent them
    # Listing a 200-message folder per message made a backlog ever slower to drain.
    assert taken_after <= 3, listings


def test_one_process_publishing_to_two_data_directories_delivers_to_each(tmp_path):
    # A process (a test run, a script, a Girder server) may talk to more than one data
    # directory. What it declared on the first is not declared on the second: each needs
    # its own bindings, or the message published to the second goes nowhere.
    queue = Queue("two-dirs", Exchange("two-dirs", type="direct"), routing_key="two-dirs")
    for data_dir in (tmp_path / "first", tmp_path / "second"):
        with connection(data_dir) as conn:
            conn.Producer(serializer="json").publish(
                {"to": data_dir.name}, exchange=queue.exchange, routing_key="two-dirs", declare=[queue]
            )
            with conn.SimpleQueue(queue) as simple:
                message = simple.get(timeout=2)
                message.ack()
                assert message.payload == {"to": data_dir.name}


def test_one_process_s_messages_come_out_in_the_order_it_sent_them(tmp_path):
    # Many in one millisecond: before, those came out in the random order of their file names' uuids.
    queue = Queue("order", Exchange("order", type="direct"), routing_key="order")
    with connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")
        for n in range(300):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="order", declare=[queue])
        with conn.SimpleQueue(queue) as simple:
            received = []
            for _ in range(300):
                message = simple.get(timeout=1)
                message.ack()
                received.append(message.payload["n"])

    assert received == list(range(300))


def test_a_consumer_of_idle_queues_drains_a_backlog_without_listing_per_message(tmp_path, monkeypatch):
    # A worker reads its task queue and idle ones (its control and cancel queues): every
    # poll of an idle queue listed the whole folder, backlog and all, about twice per task.
    from girder_worker.broker import _embedded

    busy, *idle = (Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("tasks", "ctl", "cancel"))
    listings = []
    listdir = os.listdir

    def counted(path):
        listings.append(path)
        return listdir(path)

    received: list[tuple[str, int]] = []
    with connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")
        for n in range(300):
            producer.publish({"n": n}, exchange=busy.exchange, routing_key="tasks", declare=[busy, *idle])
        monkeypatch.setattr(_embedded.os, "listdir", counted)

        def on_message(body, message):
            received.append((message.delivery_info["routing_key"], body["n"]))
            message.ack()
            if body["n"] >= 100:
                time.sleep(0.002)  # tasks take a while: the polling interval (20 ms) passes during the backlog
            if body["n"] == 100 and message.delivery_info["routing_key"] == "tasks":
                producer.publish({"n": -1}, exchange=idle[1].exchange, routing_key="cancel")

        with conn.Consumer([busy, *idle], callbacks=[on_message], accept=["json"]):
            while len(received) < 301:
                conn.drain_events(timeout=2)

    tasks = [n for key, n in received if key == "tasks"]
    assert tasks == list(range(300))
    # A message to an idle queue still comes within a polling interval (10 tasks), not after the backlog.
    assert received.index(("cancel", -1)) < 150
    # One listing per polling interval (about 25 here), not two per message (about 600 before).
    assert len(listings) < 150, len(listings)
