"""`--scheduler` values that are not a Dask scheduler: exit 2 with one message, in bounded time.

Every server here listens on loopback only, and every wait is bounded: a scheduler that does
not answer fails after `--scheduler-timeout` (2 s here), whatever listens, or not, there.
"""
from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from simulator.cli import build_parser, main
from simulator.engine.runner import SCHEDULER_TIMEOUT_S

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = str(ROOT / "scenarios" / "baseline.toml")


@pytest.mark.parametrize("address", [
    "tcp://127.0.0.1", "127.0.0.1", "",  # no port
    "foo://127.0.0.1:8786", "http://127.0.0.1:8786",  # a scheme Dask does not speak
    "tcp://127.0.0.1:99999", "tcp://127.0.0.1:abc", "tcp://:8786",  # no valid port or host
])
def test_a_malformed_address_is_refused_before_any_work(tmp_path, capsys, address):
    out = tmp_path / "out"
    assert main(["run", SCENARIO, "-n", "2", "-q", "--scheduler", address,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "argument --scheduler" in err and "SCHEME://HOST:PORT" in err
    assert "Traceback" not in err and not out.exists()


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server whose every connection goes to `handle`; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                handle(conn)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


@contextlib.contextmanager
def nothing_listens() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    yield port  # closed: connections are refused


@contextlib.contextmanager
def http_server() -> Iterator[int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def never_answers() -> Iterator[int]:
    """Accepts (the kernel's backlog does) and never reads or writes."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@contextlib.contextmanager
def closes_at_once() -> Iterator[int]:
    yield from _serve(lambda conn: conn.close())


@contextlib.contextmanager
def speaks_garbage() -> Iterator[int]:
    def reply(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n" + os.urandom(64))
        conn.close()
    yield from _serve(reply)


SERVERS = {"nothing listens": nothing_listens, "an HTTP server": http_server,
           "a server that never answers": never_answers,
           "a server that closes at once": closes_at_once,
           "a server that speaks garbage": speaks_garbage}


@pytest.mark.parametrize("server, command", [(server, "run") for server in sorted(SERVERS)]
                         + [("an HTTP server", "sweep"), ("an HTTP server", "compare")])
def test_no_dask_scheduler_fails_within_the_timeout(tmp_path, server, command):
    """The real CLI, so that the process is seen to end (no thread left waiting)."""
    extra = ["--grid", "horizon_min=400,480"] if command == "sweep" else []
    out = tmp_path / "out"
    with SERVERS[server]() as port:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "simulator.cli", command, SCENARIO, *extra, "-n", "2", "-q",
             "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "2",
             "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120)
        elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"no Dask scheduler answered at tcp://127.0.0.1:{port} within 2 s" in proc.stderr
    assert "--scheduler-timeout" in proc.stderr
    assert elapsed < 60  # 2 s of waiting plus start-up, on a loaded machine
    assert not out.exists()


def test_the_scheduler_timeout_defaults_to_ten_seconds():
    assert SCHEDULER_TIMEOUT_S == 10
    for command in (["run", SCENARIO], ["compare", SCENARIO], ["sweep", SCENARIO]):
        assert build_parser().parse_args(command).scheduler_timeout == 10
    assert main(["run", SCENARIO, "--scheduler-timeout", "0"]) == 2
