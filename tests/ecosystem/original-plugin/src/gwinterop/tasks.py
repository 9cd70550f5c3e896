"""The original's way to declare a task: on its app, here under gwexample's task name."""

from girder_worker.app import app


@app.task(name="gwexample.analyses.tasks.fibonacci")
def fibonacci(n):
    """Return the nth Fibonacci number, as gwexample's task of the same name does."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@app.task(name="gwtest.read_text")
def read_text(path):
    """Our test plugin's task of the same name: the text of the file at ``path``."""
    with open(path) as handle:
        return handle.read()


@app.task(name="gwtest.write_text")
def write_text(text, name="result.txt"):
    """Our test plugin's task of the same name: ``text`` in a new file; its path."""
    import os
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), name)
    with open(path, "w") as handle:
        handle.write(text)
    return path
