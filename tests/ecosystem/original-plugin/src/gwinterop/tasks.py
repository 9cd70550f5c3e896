"""The original's way to declare a task: on its app, here under gwexample's task name."""

from girder_worker.app import app


@app.task(name="gwexample.analyses.tasks.fibonacci")
def fibonacci(n):
    """Return the nth Fibonacci number, as gwexample's task of the same name does."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
