"""The steps every task run goes through on a girder-worker, and the bootsteps they add."""

from girder_worker.app import app
from girder_worker.pipeline import PIPELINE

for number, step in enumerate(PIPELINE, 1):
    print(f"{number:2}. {step.name:<20} {step.module}")

added = app.steps["worker"] | app.steps["consumer"]
print("bootsteps:", ", ".join(sorted(step.__name__ for step in added)))
