"""What the built-in tasks' bindings may reach, on real workers: local files only in
the directories the worker allows, http only to allowed hosts and up to a size."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from girder_worker.analysis import AnalysisError, BindingNotAllowed

MiB = 1024 * 1024
MARKER = "gw-environ-marker-3141"


@dataclass
class Server:
    """Loopback HTTP: ``/huge`` streams 300 MB without a Content-Length, ``/to/...``
    redirects to ``localhost``, ``/t.csv`` is a table; every request is recorded."""

    url: str = ""
    paths: list[str] = field(default_factory=list)
    sent: int = 0


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.paths.append(self.path)
            port = self.server.server_address[1]
            if self.path == "/huge":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * MiB
                try:
                    for _ in range(300):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        state.sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the worker stopped reading
                self.close_connection = True
            elif self.path.startswith("/to/"):
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/t.csv")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                body = b"a,b\n1,2\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def convert(app: Any, source: dict[str, Any], target: dict[str, Any] | None = None) -> Any:
    return app.send_task(
        "girder_worker.convert", ["table", {"format": "csv", **source}, target or {"format": "rows"}]
    ).get(timeout=120)


def test_a_local_binding_cannot_read_what_the_worker_does_not_allow(tmp_path, env_for, start_worker, client_app):
    env = env_for("embedded")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "t.csv").write_text("a,b\n1,2\n")
    (allowed / "environ.csv").symlink_to("/proc/self/environ")
    default = start_worker({**env, "GW_TEST_MARKER": MARKER}, "-P", "solo", plugins=())
    app = client_app(env)

    for source in ({"mode": "local", "path": "/proc/self/environ"}, {"url": "file:///proc/self/environ"}):
        with pytest.raises(BindingNotAllowed) as info:
            convert(app, source)
        assert str(info.value) == (
            "the input: local bindings and file:// URLs read and write files on the worker, and this worker allows "
            "no directory for them; set GIRDER_WORKER_LOCAL_PATHS in the worker's environment to the directories "
            "they may use to allow them"
        )
        assert MARKER not in str(info.value)
    default.stop()

    worker = start_worker(
        {**env, "GW_TEST_MARKER": MARKER, "GIRDER_WORKER_LOCAL_PATHS": str(allowed)}, "-P", "solo", plugins=()
    )
    for path in ("/proc/self/environ", str(allowed / "environ.csv"), f"{allowed}/../../../proc/self/environ"):
        with pytest.raises(BindingNotAllowed) as info:
            convert(app, {"mode": "local", "path": path})
        assert MARKER not in str(info.value)
        assert "is outside the directories" in str(info.value) or "without '..'" in str(info.value)
    assert convert(app, {"mode": "local", "path": str(allowed / "t.csv")})["data"]["rows"] == [{"a": 1, "b": 2}]
    assert MARKER not in default.log + worker.log


def test_a_local_binding_cannot_write_outside_the_allowed_directories(tmp_path, env_for, start_worker, client_app):
    env = env_for("embedded")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "link.csv").symlink_to(tmp_path / "through-link.csv")
    start_worker({**env, "GIRDER_WORKER_LOCAL_PATHS": str(allowed)}, "-P", "solo", plugins=())
    app = client_app(env)
    inline = {"data": "a,b\n1,2\n"}

    for target in (tmp_path / "outside.csv", allowed / "link.csv", Path(f"{allowed}/../dotdot.csv")):
        with pytest.raises(BindingNotAllowed, match=r"^the output: .*(is outside the directories|without '\.\.')"):
            convert(app, inline, {"mode": "local", "path": str(target), "format": "csv"})
    for name in ("outside.csv", "through-link.csv", "dotdot.csv"):
        assert not (tmp_path / name).exists(), name

    done = convert(app, inline, {"mode": "local", "path": str(allowed / "out.csv"), "format": "csv"})
    assert done["path"] == str(allowed / "out.csv")
    assert (allowed / "out.csv").read_text() == "a,b\n1,2\n"


def _high_water_mark(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_300_mb_http_body_is_refused_at_the_cap(server, env_for, start_worker, client_app):
    env = env_for("embedded")
    cap = 8 * MiB
    worker = start_worker({**env, "GIRDER_WORKER_MAX_DATA_BYTES": str(cap)}, "-P", "solo", plugins=())
    app = client_app(env)
    assert convert(app, {"url": server.url + "/t.csv"})["data"]["rows"] == [{"a": 1, "b": 2}]  # requests imported
    process = psutil.Process(worker.proc.pid)
    rss_before, peak_before = process.memory_info().rss, _high_water_mark(worker.proc.pid)

    with pytest.raises(AnalysisError) as info:
        convert(app, {"url": server.url + "/huge"})

    assert str(info.value) == (
        f"the input: {server.url}/huge sends more than GIRDER_WORKER_MAX_DATA_BYTES (8,388,608 bytes); the rest "
        "was not read"
    )
    peak_growth = _high_water_mark(worker.proc.pid) - max(peak_before, rss_before)
    assert peak_growth < 4 * cap, f"the worker's peak RSS grew by {peak_growth / MiB:.0f} MiB for a cap of 8 MiB"
    assert process.memory_info().rss - rss_before < 4 * cap
    assert server.sent < 100 * MiB  # of 300: the worker stopped reading
    assert worker.proc.poll() is None


def test_http_bindings_reach_only_allowed_hosts(server, env_for, start_worker, client_app):
    env = env_for("embedded")
    worker = start_worker({**env, "GIRDER_WORKER_HTTP_ALLOWED_HOSTS": "data.example.org"}, "-P", "solo", plugins=())
    app = client_app(env)

    with pytest.raises(BindingNotAllowed) as info:
        convert(app, {"url": server.url + "/t.csv?token=secret"})
    assert str(info.value) == (
        f"the input: host '127.0.0.1' of {server.url}/t.csv is not in GIRDER_WORKER_HTTP_ALLOWED_HOSTS "
        "(data.example.org); add it there in the worker's environment to allow it"
    )
    with pytest.raises(BindingNotAllowed, match=r"^the output: host '127.0.0.1' of .* is not in"):
        convert(app, {"data": "a\n1\n"}, {"url": server.url + "/upload", "format": "csv"})
    assert server.paths == []  # nothing was sent
    worker.stop()

    start_worker({**env, "GIRDER_WORKER_HTTP_ALLOWED_HOSTS": "127.0.0.1"}, "-P", "solo", plugins=())
    with pytest.raises(BindingNotAllowed, match=r"^the input: host 'localhost' of http://localhost:\d+/t.csv is not"):
        convert(app, {"url": server.url + "/to/elsewhere"})  # a redirect to another host
    assert server.paths == ["/to/elsewhere"]
    with pytest.raises(BindingNotAllowed, match=r"^the input: http method 'DELETE' is not used for an input"):
        convert(app, {"url": server.url + "/t.csv", "method": "DELETE"})
    assert server.paths == ["/to/elsewhere"]
