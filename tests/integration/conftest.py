"""Fixtures for tests that run real worker processes on real brokers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from girder_worker._app import create_app
from girder_worker._config import read_config

from ..conftest import BROKERS, broker_env


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env_for(tmp_path: Path) -> Callable[[str], dict[str, str]]:
    """``env_for(broker)``: the environment of a worker and client on that broker."""

    def make(name: str) -> dict[str, str]:
        return broker_env(name, tmp_path / "data")

    return make


@pytest.fixture
def client_app() -> Iterator[Callable[[dict[str, str]], Any]]:
    """``client_app(env)``: a girder-worker app configured like a client with ``env``."""
    apps: list[Any] = []

    def make(env: dict[str, str]) -> Any:
        app = create_app(read_config(env))
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


@pytest.fixture
def queue_app(
    client_app: Callable[[dict[str, str]], Any], unique_queue: str
) -> Iterator[Callable[[dict[str, str]], Any]]:
    """``queue_app(env)``: a client app; the test's queue is deleted from its broker afterwards."""
    apps: list[Any] = []

    def make(env: dict[str, str]) -> Any:
        app = client_app(env)
        apps.append(app)
        return app

    yield make
    for app in apps:
        purge_queue(app, unique_queue)


def close_app(app: Any) -> None:
    """Close what a client app opened, its result backend's connections included."""
    backend = app.backend
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None and hasattr(consumer, "stop"):
        consumer.stop()
    client = getattr(backend, "client", None)
    if client is not None:
        client.connection_pool.disconnect()
    app.close()


def purge_queue(app: Any, queue: str) -> None:
    """Delete a test's queue from the broker so nothing of it stays behind."""
    with app.connection_for_write() as conn, contextlib.suppress(Exception):  # it may never have been declared
        conn.default_channel.queue_delete(queue)


from .girder_server import girder, girder_server_factory  # noqa: E402, F401
from .private_brokers import private_rabbitmq, private_redis  # noqa: E402, F401
