"""Cancellation and time limits: the cancel flag a task polls, and stopping a run that ignores it.

A cancel is recorded where every worker sees it (the result backend), broadcast to
the worker running the task, raised as the task's flag (a table in shared memory in
prefork) and, past the task's grace period, enforced by interrupting or terminating
the run. Time limits are enforced by the worker's main process the same way.
"""
