"""The compatibility suite uses the integration tests' fixtures (real workers, real brokers)."""

from ..integration.conftest import broker, client_app, env_for, queue_app  # noqa: F401
