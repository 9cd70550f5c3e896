"""Girder's jobs: created when a task is sent, and told the run's status, log and progress.

The publishing side creates a Girder job for a task sent with a Girder; the worker
side opens the job's channel when the run starts, captures the task's output for
the job log, and sends batched reports through one reporter thread per Girder.
Reporting never changes a task's outcome.
"""
