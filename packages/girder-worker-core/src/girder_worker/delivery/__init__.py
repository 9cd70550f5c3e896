"""The delivery policy: who runs a task, and what happens to it when its worker is lost.

Leases record which worker runs which task where every worker can see them; a task
whose worker died is redelivered or failed as its policy says, and a duplicate
delivery of a task still running elsewhere is dropped.
"""
