"""The emulator for tests: served from this process on a free loopback port, manual clock.

    with serving(scenario(...)) as s:          # tests.conftest.scenario mappings
        client = s.client()                    # the official ComputeManagementClient
        s.advance_to(5)                        # POST /_emulator/advance
        status, headers, body = s.call("GET", path)

Durations in `tests.conftest.FIXED_TIMING` make every expected minute checkable by hand.
"""
from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from simulator import Scenario, parse_scenario
from simulator.serve.app import bind, make_server
from simulator.serve.clock import Clock, ManualClock
from simulator.serve.emulator import Emulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
from emulator_client import compute_client  # noqa: E402  (examples/, put on the path above)

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg"
API = "2024-07-01"


def ss_path(name: str, tail: str = "", api: str | None = API) -> str:
    path = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}{tail}")
    return path if api is None else f"{path}{'&' if '?' in path else '?'}api-version={api}"


@dataclass
class Served:
    emulator: Emulator
    url: str

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """One request on a fresh connection: (status, headers, JSON body or None)."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=dict(headers or {}))
        resp = conn.getresponse()
        content = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), json.loads(content) if content else None

    def minute(self) -> float:
        return self.call("GET", "/_emulator/clock")[2]["minute"]

    def advance_to(self, minute: float) -> None:
        step = minute - self.minute()
        assert step >= 0, f"the clock is already past minute {minute}"
        status, _, _ = self.call("POST", f"/_emulator/advance?minutes={step}")
        assert status == 200

    def client(self, **kwargs: Any):
        return compute_client(self.url, SUB, polling_interval=0.02, **kwargs)

    def create(self, name: str, capacity: int, mode: str = "Uniform", create: bool = True,
               delete: bool = True) -> None:
        """PUT a scale set with both policies set as asked (raw HTTP: no poller to wait on)."""
        status, _, body = self.call("PUT", ss_path(name), {
            "location": "westus", "sku": {"capacity": capacity},
            "properties": {"orchestrationMode": mode, "resiliencyPolicy": {
                "resilientVMCreationPolicy": {"enabled": create},
                "resilientVMDeletionPolicy": {"enabled": delete}}}})
        assert status == 201, body

    def run_while_ticking(self, work: Callable[[], Any], step: float = 1.0) -> Any:
        """Run `work` (which waits on long-running operations) in a thread, advancing the clock
        by `step` minutes whenever an operation it started is in progress."""
        before = set(self.emulator.operations.by_id)
        out: dict[str, Any] = {}

        def target() -> None:
            try:
                out["value"] = work()
            except BaseException as err:  # re-raised in the test's thread
                out["error"] = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        while thread.is_alive():
            if any(op.id not in before for op in self.emulator.operations.pending):
                self.call("POST", f"/_emulator/advance?minutes={step}")
            time.sleep(0.01)
        if "error" in out:
            raise out["error"]
        return out.get("value")


@contextmanager
def serving(scenario: Mapping[str, Any] | Scenario | None = None, seed: int = 0,
            clock: Clock | None = None) -> Iterator[Served]:
    """An emulator (manual clock unless given) served on 127.0.0.1 until the block ends."""
    emulator = Emulator(None if scenario is None else parse_scenario(scenario), seed=seed,
                        clock=clock or ManualClock())
    sock = bind("127.0.0.1", 0)
    server = make_server(emulator, quiet=True)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the emulator did not start"
        time.sleep(0.005)
    try:
        yield Served(emulator, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join(10)
