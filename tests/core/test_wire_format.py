"""The original girder-worker's wire format: read by an allow-list, written so that
jsonpickle (what the original decodes with) reads it back."""

from __future__ import annotations

import sys

import jsonpickle
import pytest
from girder_client import GirderClient

from girder_worker.broker._wire_format import dumps, loads
from girder_worker_utils.transforms.common import TemporaryDirectory
from girder_worker_utils.transforms.girder_io import GirderFileId, GirderUploadToItem
from girder_worker_utils.wire import RefusedObject, flatten, restore

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def client(token: str = "secret-token") -> GirderClient:
    gc = GirderClient(apiUrl="http://girder.test/api/v1")
    gc.token = token
    return gc


def test_a_message_of_the_original_is_decoded_with_its_transforms_and_shared_references() -> None:
    shared = GirderFileId("f1", gc=client())
    body = jsonpickle.encode(((shared, 3, [shared, (1, 2)]), {"out": TemporaryDirectory()}, EMBED), keys=True)

    args, kwargs, embed = loads(body)

    assert isinstance(args[0], GirderFileId)
    assert args[0].file_id == "f1"
    assert args[2][0] is args[0]  # jsonpickle's {"py/id": n}
    assert args[2][1] == (1, 2)
    assert args[0].gc.urlBase == "http://girder.test/api/v1/"
    assert args[0].gc.token == "secret-token"
    assert isinstance(kwargs["out"], TemporaryDirectory)
    assert embed == EMBED


def test_the_original_paths_of_the_classes_are_accepted() -> None:
    value = {"py/object": "girder_worker.utils.transforms.girder_io.GirderUploadToItem", "item_id": "i1"}
    hook = restore(value)
    assert isinstance(hook, GirderUploadToItem)
    assert hook.item_id == "i1"
    legacy = {"py/object": "girder_worker_utils.transforms.contrib.girder_io.GirderFileIdAllowDirect", "file_id": "x"}
    assert type(restore(legacy)).__name__ == "GirderFileIdAllowDirect"


def test_what_we_write_is_what_jsonpickle_reads_back() -> None:
    shared = GirderFileId("f2", gc=client("t2"))
    text = dumps(((shared, {"k": [shared]}), {}, EMBED))

    assert '"py/object": "girder_worker.utils.transforms.girder_io.GirderFileId"' in text
    args, _kwargs, _embed = jsonpickle.decode(text, keys=True)
    assert isinstance(args[0], GirderFileId)
    assert args[0].file_id == "f2"
    assert args[1]["k"][0] is args[0]
    assert args[0].gc.token == "t2"
    assert loads(text)[0][1]["k"][0].file_id == "f2"  # and so do we


def test_plain_bodies_are_written_as_kombu_writes_them() -> None:
    from kombu.utils.json import dumps as kombu_dumps

    body = ([1, "two", {"three": [3.0]}], {"x": None}, EMBED)
    assert dumps(body) == kombu_dumps(body)
    assert loads(dumps(body)) == [[1, "two", {"three": [3.0]}], {"x": None}, EMBED]


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (
            {"py/object": "xmlrpc.server.SimpleXMLRPCServer", "addr": 1},
            "'xmlrpc.server.SimpleXMLRPCServer' (py/object)",
        ),
        ({"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}, "'os.system' (py/reduce)"),
        ({"py/type": "subprocess.Popen"}, "'subprocess.Popen' (py/type)"),
        ({"py/function": "builtins.eval"}, "'builtins.eval' (py/function)"),
        ({"py/repr": "os/os.getcwd()"}, "'os/os.getcwd()' (py/repr)"),
        ({"py/mod": "smtplib"}, "'smtplib' (py/mod)"),
        (
            {"py/object": "girder_worker_utils.transforms.girder_io.GirderFileId", "py/newargs": {"py/tuple": []}},
            "(py/newargs)",
        ),
        ({"py/object": "girder_worker.app.GirderWorkerApp"}, "is not a registered transform class"),
        ({"py/id": 7}, "'7' (py/id) refers to no object before it"),
    ],
)
def test_anything_else_is_refused_before_it_is_imported(value: object, names: str) -> None:
    before = set(sys.modules)
    with pytest.raises(RefusedObject) as info:
        loads(dumps([[value], {}, None]))
    assert names in str(info.value)
    assert set(sys.modules) == before  # nothing was imported to decide


def test_a_girder_client_is_rebuilt_from_its_url_and_token_alone() -> None:
    value = {
        "py/object": "girder_client.GirderClient",
        "urlBase": "https://girder.test/api/v1/",
        "token": "tok",
        "progressReporterCls": {"py/type": "os.system"},  # ignored, never resolved
        "_session": {"py/object": "requests.Session"},  # likewise
    }
    with pytest.raises(RefusedObject, match=r"requests\.Session"):
        restore(value)  # a nested object other than a type is still refused
    del value["_session"]
    gc = restore(value)
    assert isinstance(gc, GirderClient)
    assert (gc.urlBase, gc.token) == ("https://girder.test/api/v1/", "tok")
    assert gc.progressReporterCls is not None
    assert gc.progressReporterCls.__module__ == "girder_client"


def test_deep_nesting_is_refused_not_recursed() -> None:
    value: object = 1
    for _ in range(200):
        value = {"py/tuple": [value]}
    with pytest.raises(RefusedObject, match="nested more than 64 levels"):
        restore(value)


def test_flatten_refuses_objects_that_are_not_transforms() -> None:
    with pytest.raises(TypeError, match="is not a registered transform class"):
        flatten([object()])
