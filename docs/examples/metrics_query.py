"""Print what a worker's tasks came to, read from its metrics endpoint.

Usage: ``python metrics_query.py http://127.0.0.1:9808/metrics``
"""

import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

ENDINGS = ("started", "succeeded", "failed", "revoked", "lost")


def task_counts(url):
    """{task name: {ending: count}} from the girder_worker_tasks_* counters."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    counts = {}
    for family in text_string_to_metric_families(text):
        ending = family.name.removeprefix("girder_worker_tasks_")
        if ending not in ENDINGS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                task = counts.setdefault(sample.labels["task"], dict.fromkeys(ENDINGS, 0))
                task[ending] = int(sample.value)
    return counts


if __name__ == "__main__":
    for name, counts in sorted(task_counts(sys.argv[1]).items()):
        print(name, " ".join(f"{ending}={count}" for ending, count in counts.items()))
