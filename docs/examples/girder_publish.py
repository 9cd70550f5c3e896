"""Send a task with a Girder job: Girder's API URL and a token that may create jobs."""

import sys

from girder_worker.app import app

api_url, token = sys.argv[1], sys.argv[2]

result = app.send_task(
    "girder_tasks.count_words",
    args=[["the quick brown fox", "jumps over", "the lazy dog"]],
    girder_api_url=api_url,
    girder_client_token=token,
    girder_job_title="Counting words",
)
print(result.get(timeout=60))
