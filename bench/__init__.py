"""Benchmarks of girder-worker against plain Celery; ``hatch run bench:run``."""
