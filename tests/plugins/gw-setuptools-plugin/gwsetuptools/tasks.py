from girder_worker_utils import task


@task
def shout(text):
    return text.upper() + "!"
