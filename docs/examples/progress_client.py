"""Start progress_tasks.count and print its state and progress as a client sees them.

Run a worker that has the task first (``girder-worker -l info --include progress_tasks``),
with the same GIRDER_WORKER_* environment.
"""

import time

from girder_worker.app import app

result = app.send_task("progress_tasks.count", args=[30])
seen = []
while not result.ready():
    if result.state == "PROGRESS" and result.info not in seen:
        seen.append(result.info)
    time.sleep(0.05)
print(result.state, result.result)
print("progress updates seen:", 2 <= len(seen) <= 10)  # 30 reports, at most two writes a second
print("first:", seen[0])
