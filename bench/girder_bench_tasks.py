"""Tasks of the Girder reporting benchmark (bench/girder_reporting.py)."""

from girder_worker_utils import task


@task(name="bench.girder.short")
def short(x):
    return x


@task(name="bench.girder.flood")
def flood(lines):
    for i in range(lines):
        print(f"flood line {i} of {lines}")
    return lines
