"""girder-worker's Redis result records, read by a plain Celery app on the same Redis.

Run: python redis_results.py [redis://127.0.0.1:6379/13]
"""

import os
import sys

from celery import Celery, states

url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/13"
os.environ.update(GIRDER_WORKER_BROKER=url, GIRDER_WORKER_BACKEND=url)

from girder_worker.app import app  # noqa: E402  (configured from the variables above)

plain = Celery("plain", broker=url, backend=url, set_as_current=False)
ours = app.backend  # what a girder-worker worker stores states with

ours.store_result("example-1", {"pid": 1234, "hostname": "worker@site"}, states.STARTED)
print(type(ours).__name__, "stored STARTED; plain Celery reads", plain.AsyncResult("example-1").state)
ours.store_result("example-1", 42, states.SUCCESS)
# A duplicate delivery's late STARTED never replaces a stored SUCCESS.
ours.store_result("example-1", {"pid": 5678, "hostname": "other@site"}, states.STARTED)
done = plain.AsyncResult("example-1")
print("after a late STARTED: plain Celery reads", done.state, done.result)
done.forget()
