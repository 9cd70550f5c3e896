class NotAPlugin:
    """Has no task_imports(): not a girder-worker plugin."""

    def __init__(self, app):
        self.app = app
