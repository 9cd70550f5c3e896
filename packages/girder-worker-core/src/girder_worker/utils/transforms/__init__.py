"""The original's ``girder_worker.utils.transforms``: :mod:`girder_worker_utils.transforms`."""
