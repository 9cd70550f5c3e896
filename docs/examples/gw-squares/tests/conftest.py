# The fixtures gw_worker (a real worker running this plugin's tasks) and
# gw_eager_app (tasks run in the test's process), from girder-worker-core.
pytest_plugins = ["girder_worker.testing"]
