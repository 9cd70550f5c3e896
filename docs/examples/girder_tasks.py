"""Tasks that report to their Girder job: output, progress, and a Girder client."""

from girder_worker_utils import task


@task(name="girder_tasks.count_words", bind=True)
def count_words(self, texts):
    total = 0
    for i, text in enumerate(texts):
        self.progress(i, total=len(texts), message=f"text {i + 1} of {len(texts)}")
        words = len(text.split())
        print(f"text {i + 1}: {words} words")  # goes to the job's log
        total += words
    self.progress(len(texts), total=len(texts), message="counted")
    return total


@task(name="girder_tasks.whoami", bind=True)
def whoami(self):
    # A girder_client.GirderClient, logged in with the token the task was sent with.
    return self.girder_client.get("user/me")["login"]
