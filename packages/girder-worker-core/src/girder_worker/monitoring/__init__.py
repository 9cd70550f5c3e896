"""What operators see: task events for Flower and ``celery events``, logs, metrics, status.

Log lines carry the task that wrote them and never a secret; the optional Prometheus
endpoint counts and times runs, cancels and losses; ``girder-worker status`` asks
the workers that answer.
"""
