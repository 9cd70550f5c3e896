"""Send a workflow to a worker with girder_worker.run and print what comes back.

The worker runs python-mode steps only with GIRDER_WORKER_ALLOW_PYTHON_MODE=true.
"""

import json
from pathlib import Path

from girder_worker.app import app

task = json.loads(Path(__file__).with_name("analysis_workflow.json").read_text())

result = app.send_task(
    "girder_worker.run",
    [task],
    {
        "inputs": {
            "a": {"format": "csv", "data": "name,size\nalpha,1\n"},
            "b": {"format": "objectlist", "data": [{"name": "beta", "size": 2.5}]},
        },
        "outputs": {"table": {"format": "csv"}},
    },
)
print(result.get(timeout=60))
