"""Serve the real Girder 5.0.21 REST API on an in-memory mongomock database.

This script runs with the interpreter of the separate Girder virtualenv that
``girder_server.py`` builds (``girder``, ``girder-jobs``,
``girder-plugin-worker``, ``girder-client``, ``mongomock`` and our
``girder-worker`` packages from wheels). It is never imported by the test suite.

What it does, in order:

1. replaces ``pymongo.MongoClient`` with ``mongomock.MongoClient`` (no MongoDB
   server is needed; every start is an empty Girder);
2. imports ``girder.asgi``, which builds the app and loads the ``jobs`` and
   ``worker`` plugins through their entry points;
3. adds the test-only route ``PUT /job/{id}/schedule`` (site admin), which calls
   ``Job().scheduleJob(job)``; girder-plugin-worker then sends the Celery task
   of a ``worker_handler`` job to ``GIRDER_WORKER_BROKER``. Real Girder has no
   such route;
3b. adds the test-only route ``POST /gw_test/publish`` (any user), which calls
   ``apply_async`` of a gwtest task inside the request, as a Girder plugin does
   (see :func:`add_publish_route`). Real Girder has no such route either;
4. creates a site admin and a 30-day token with the scopes ``core.user_auth``,
   ``jobs.rest.create_job`` and ``jobs.rest.list_job`` (``POST /job`` needs the
   literal ``jobs.rest.create_job`` scope, which no REST call can mint);
5. sets ``worker.api_url``;
6. writes a JSON description to ``--info-file`` (atomically) and serves HTTP
   with uvicorn (no reloader) on the listening socket inherited as ``--fd``, or
   on ``--host``/``--port``.
"""

import argparse
import json
import os
import socket
import sys


def patch_database(uri: str) -> None:
    """Make Girder talk to mongomock; must run before Girder is imported."""
    # Girder only parses this URI (for the database name); nothing connects.
    os.environ["GIRDER_MONGO_URI"] = uri

    import mongomock
    import mongomock.codec_options
    import mongomock.collection
    import mongomock.command_cursor
    import pymongo

    pymongo.MongoClient = mongomock.MongoClient

    # Girder opens collections with CodecOptions(tz_aware=True, tzinfo=UTC).
    # mongomock refuses any tzinfo, but already returns UTC-aware datetimes
    # for tz_aware=True, so dropping a zero-offset tzinfo changes nothing.
    original = mongomock.codec_options.is_supported

    def is_supported(options):
        tzinfo = getattr(options, "tzinfo", None)
        if tzinfo is not None and tzinfo.utcoffset(None) is not None and not tzinfo.utcoffset(None):
            options = options.with_options(tzinfo=None)
        return original(options)

    mongomock.codec_options.is_supported = is_supported

    # Endpoints returning a cursor are serialized only for known cursor types.
    import girder.api.rest

    girder.api.rest._MONGO_CURSOR_TYPES = (
        *tuple(girder.api.rest._MONGO_CURSOR_TYPES),
        mongomock.collection.Cursor,
        mongomock.command_cursor.CommandCursor,
    )


def add_schedule_route(api_root) -> None:
    """TEST HOOK, not Girder API: ``PUT /job/{id}/schedule`` -> Job().scheduleJob."""
    from girder.api import access
    from girder.api.describe import Description, autoDescribeRoute
    from girder.api.rest import filtermodel
    from girder.constants import AccessType
    from girder_jobs.models.job import Job

    @access.admin
    @filtermodel(Job)
    @autoDescribeRoute(
        Description("TEST HOOK (not in real Girder): schedule a job.").modelParam(
            "id", "The job ID.", model=Job, level=AccessType.ADMIN, includeLog=False
        )
    )
    def schedule_job(job, params):
        Job().scheduleJob(job)
        return Job().load(job["_id"], force=True)

    api_root.job.route("PUT", (":id", "schedule"), schedule_job)


def add_publish_route(api_root) -> None:
    """TEST HOOK, not Girder API: ``POST /gw_test/publish`` publishes a gwtest task from a REST request.

    It stands for a Girder plugin that calls ``delay``/``apply_async`` of a
    girder-worker task while it answers a request, as large_image and
    slicer_cli_web do. ``task`` is one of:

    ``copy_file``
        ``gwtest.copy_file(GirderFileId(fileId))`` with the result hook
        ``GirderUploadToItem(itemId)``: the worker downloads the file, copies it and
        the hook uploads the copy to the item;
    ``spawn_child``
        ``gwtest.spawn_child(queue)``: the running task publishes ``gwtest.add``,
        whose job it creates through Girder's REST API with the token it was given.

    Both go to ``queue``. It answers ``{"taskId": ..., "job": result.job}``. The
    tasks are stubs here (their names and signatures); the test's worker runs the
    real ones of the gw-testtasks plugin.
    """
    from girder.api import access
    from girder.api.describe import Description, autoDescribeRoute
    from girder.api.rest import Resource

    from girder_worker.app import app
    from girder_worker_utils.transforms.girder_io import GirderFileId, GirderUploadToItem

    @app.task(name="gwtest.copy_file")
    def copy_file(path, name="copy.txt"):
        raise NotImplementedError("runs on the worker")

    @app.task(name="gwtest.spawn_child")
    def spawn_child(queue, title="child job"):
        raise NotImplementedError("runs on the worker")

    class GwTest(Resource):
        def __init__(self):
            super().__init__()
            self.resourceName = "gw_test"
            self.route("POST", ("publish",), self.publish)

        @access.user
        @autoDescribeRoute(
            Description("TEST HOOK (not in real Girder): publish a gwtest task inside this request.")
            .param("task", "copy_file or spawn_child.", enum=["copy_file", "spawn_child"])
            .param("queue", "The queue to send it to.")
            .param("fileId", "copy_file: the file to copy.", required=False)
            .param("itemId", "copy_file: the item that gets the copy.", required=False)
        )
        def publish(self, task, queue, fileId, itemId):  # noqa: N803  (Girder's parameter names)
            if task == "copy_file":
                result = copy_file.apply_async(
                    (GirderFileId(fileId),), queue=queue, girder_result_hooks=[GirderUploadToItem(itemId)]
                )
            else:
                result = spawn_child.apply_async((queue,), queue=queue, girder_job_title="parent job")
            return {"taskId": result.id, "job": result.job}

    api_root.gw_test = GwTest()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fd", type=int, default=None, help="an inherited, bound (not listening) socket")
    parser.add_argument("--info-file", required=True)
    parser.add_argument("--api-url", default=None, help="worker.api_url (default: this server)")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="adminpassword")
    parser.add_argument("--mongo-uri", default="mongodb://mongomock.invalid:27017/girder")
    args = parser.parse_args(argv)

    # Production mode: the development mode would start uvicorn's reloader.
    os.environ["GIRDER_SERVER_MODE"] = "production"
    patch_database(args.mongo_uri)

    import girder.wsgi
    import uvicorn
    from girder.asgi import app  # builds the app, loads the plugins
    from girder.constants import TokenScope
    from girder.models.setting import Setting
    from girder.models.token import Token
    from girder.models.user import User

    add_schedule_route(girder.wsgi.info["apiRoot"])
    add_publish_route(girder.wsgi.info["apiRoot"])

    api_url = f"http://{args.host}:{args.port}/api/v1"
    user = User().createUser(
        login=args.login,
        password=args.password,
        firstName="Admin",
        lastName="User",
        email=f"{args.login}@example.com",
        admin=True,
    )
    token = Token().createToken(
        user=user, days=30, scope=[TokenScope.USER_AUTH, "jobs.rest.create_job", "jobs.rest.list_job"]
    )
    Setting().set("worker.api_url", args.api_url or api_url)

    info = {
        "api_url": api_url,
        "token": str(token["_id"]),
        "login": args.login,
        "password": args.password,
        "user_id": str(user["_id"]),
        "pid": os.getpid(),
        "broker": os.environ.get("GIRDER_WORKER_BROKER"),
    }
    tmp = args.info_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, args.info_file)
    print("girder_serve:", json.dumps(info), flush=True)

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    if args.fd is None:
        server.run()
    else:
        # The test process bound this socket to a free port, so that no other
        # process can take the port between choosing it and serving on it.
        sock = socket.socket(fileno=args.fd)
        server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
