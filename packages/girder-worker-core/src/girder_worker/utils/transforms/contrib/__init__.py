"""The original's ``girder_worker.utils.transforms.contrib``."""
