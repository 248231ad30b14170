"""Load test of `vmss-sim serve`: concurrent clients polling and mutating scale sets.

    python benchmarks/serve_load.py [--seconds 30] [--clients 20] [--scenario FILE]

starts `vmss-sim serve` in a subprocess on a free loopback port (speed clock, 60 simulated
minutes per second), creates one scale set per two clients (Uniform and Flexible in turn),
and lets every client loop over a weighted mix of requests for the given time: list VMs with
both expands, get the scale set, get a VM, change the capacity, delete instances, toggle the
policies, poll its last operation, and three deliberate errors (a capacity past the limit, an
unknown scale set, malformed JSON). It prints requests per second and latency percentiles,
and fails if any answer was not one its request allows, if a listing shows a VM twice or
brings back one that had gone, or if an operation never ends. tests/test_serve_load.py runs
the same load, briefly, against an emulator in its own process.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SUB, RG, API = "00000000-0000-0000-0000-000000000000", "load", "2024-07-01"
POLICY = {"resilientVMCreationPolicy": {"enabled": True},
          "resilientVMDeletionPolicy": {"enabled": True}}
#: request kind -> (weight, the HTTP statuses it may get). 404 on a VM and 409 on a delete are
#: intended: another client of the same scale set may have deleted or be deleting that VM.
KINDS = {
    "create": (0, {201}), "list": (30, {200}), "get_scale_set": (12, {200}),
    "get_vm": (10, {200, 404}),
    "capacity": (14, {200}), "delete": (10, {202, 404, 409}), "policy": (5, {200}),
    "operation": (9, {200}), "too_big": (4, {400}), "unknown": (3, {404}),
    "malformed": (3, {400}),
}


def local(url: str) -> str:
    """An absolute URL the emulator gave (an operation's) as a path for the connection."""
    return urlsplit(url)._replace(scheme="", netloc="").geturl()


def ss_path(name: str, tail: str = "", query: str = "") -> str:
    return (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}{tail}?api-version={API}{query}")


@dataclass
class Client:
    """One client: its own keep-alive connection, its scale set, what it saw."""

    url: str
    scale_set: str
    seed: int
    latencies: list[float] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    last: dict[str, str] = field(default_factory=dict)  # name -> instanceId, last listing
    gone: set[str] = field(default_factory=set)  # names that have left a listing

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        parts = urlsplit(self.url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def call(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        data = body if isinstance(body, bytes) else (
            None if body is None else json.dumps(body).encode())
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=data,
                              headers={"Content-Type": "application/json"} if data else {})
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as err:
            self.errors.append(f"{kind}: {method} {path}: {err!r}")
            self.conn.close()
            return None
        self.latencies.append(time.perf_counter() - start)
        self.counts[(kind, resp.status)] += 1
        if resp.status not in KINDS[kind][1]:
            self.errors.append(f"{kind}: {method} {path} -> {resp.status} {raw[:300]!r}")
        if resp.getheader("Azure-AsyncOperation"):
            self.operations.append(resp.getheader("Azure-AsyncOperation"))
        return json.loads(raw) if raw and resp.status < 300 else None

    def listing(self) -> None:
        body = self.call("list", "GET", ss_path(self.scale_set, "/virtualMachines",
                                                "&$expand=resiliencyView,instanceView"))
        if body is None:
            return
        names = [vm["name"] for vm in body["value"]]
        if len(set(names)) != len(names):
            self.errors.append(f"{self.scale_set}: a VM listed twice: {sorted(names)}")
        back = set(names) & self.gone
        if back:
            self.errors.append(f"{self.scale_set}: VMs came back after leaving: {sorted(back)}")
        now = {vm["name"]: vm["instanceId"] for vm in body["value"]}
        self.gone |= set(self.last) - set(now)
        self.last = now

    def step(self) -> None:
        kind = self.rng.choices(list(KINDS), weights=[w for w, _ in KINDS.values()])[0]
        ids = list(self.last.values())
        if kind == "list":
            self.listing()
        elif kind == "get_scale_set":
            self.call(kind, "GET", ss_path(self.scale_set))
        elif kind == "get_vm" and ids:
            self.call(kind, "GET", ss_path(self.scale_set, f"/virtualMachines/"
                                           f"{self.rng.choice(ids)}", "&$expand=instanceView"))
        elif kind == "capacity":
            self.call(kind, "PATCH", ss_path(self.scale_set),
                      {"sku": {"capacity": self.rng.randint(0, 20)}})
        elif kind == "delete" and ids:
            chosen = self.rng.sample(ids, min(len(ids), self.rng.randint(1, 2)))
            self.call(kind, "POST", ss_path(self.scale_set, "/delete"), {"instanceIds": chosen})
        elif kind == "policy":
            self.call(kind, "PATCH", ss_path(self.scale_set), {"properties": {"resiliencyPolicy": {
                "resilientVMDeletionPolicy": {"enabled": self.rng.random() < 0.7}}}})
        elif kind == "operation" and self.operations:
            self.call(kind, "GET", local(self.operations[-1]))
        elif kind == "too_big":
            self.call(kind, "PATCH", ss_path(self.scale_set), {"sku": {"capacity": 5000}})
        elif kind == "unknown":
            self.call(kind, "GET", ss_path(f"{self.scale_set}-missing"))
        elif kind == "malformed":
            self.call(kind, "PATCH", ss_path(self.scale_set), b'{"sku": {"capacity": 3')


@dataclass
class LoadResult:
    clients: list[Client]
    seconds: float

    @property
    def requests(self) -> int:
        return sum(len(c.latencies) for c in self.clients)

    @property
    def errors(self) -> list[str]:
        return [e for c in self.clients for e in c.errors]

    def percentile(self, q: float) -> float:
        lat = sorted(x for c in self.clients for x in c.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    def summary(self) -> str:
        counts: Counter = sum((c.counts for c in self.clients), Counter())
        mix = ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(counts.items()))
        return (f"{len(self.clients)} clients for {self.seconds:.1f} s: {self.requests} requests, "
                f"{self.requests / self.seconds:.0f} requests/s; latency p50 "
                f"{self.percentile(0.5) * 1e3:.1f} ms, p99 {self.percentile(0.99) * 1e3:.1f} ms, "
                f"max {self.percentile(1.0) * 1e3:.1f} ms; errors {len(self.errors)}\n"
                f"  answers: {mix}")


def run_load(url: str, clients: int = 20, seconds: float = 30.0, seed: int = 0) -> LoadResult:
    """Create the scale sets, run the clients for `seconds`, return what they saw."""
    names = [f"load-{i}" for i in range((clients + 1) // 2)]
    setup = Client(url, "", seed)
    for i, name in enumerate(names):
        setup.call("create", "PUT", ss_path(name), {
            "location": "westus", "sku": {"capacity": 5}, "properties": {
                "orchestrationMode": "Uniform" if i % 2 == 0 else "Flexible",
                "resiliencyPolicy": POLICY}})
    if setup.errors:
        raise RuntimeError(f"could not create the scale sets: {setup.errors}")
    workers = [Client(url, names[i // 2], seed * 1000 + i) for i in range(clients)]
    deadline = time.perf_counter() + seconds

    def loop(client: Client) -> None:
        client.listing()
        while time.perf_counter() < deadline:
            client.step()

    threads = [threading.Thread(target=loop, args=(c,)) for c in workers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(workers, time.perf_counter() - start)


def settle(url: str, result: LoadResult, timeout: float = 30.0) -> list[str]:
    """Poll every operation the clients started until it has ended; the ones that never do."""
    poller = Client(url, "", 0)
    pending = sorted({op for c in result.clients for op in c.operations})
    end = time.monotonic() + timeout
    while pending and time.monotonic() < end:
        time.sleep(0.2)
        pending = [op for op in pending
                   if (poller.call("operation", "GET", local(op)) or {}).get("status")
                   in (None, "InProgress")]
    return pending


def start_server(scenario: str | None, speed: float) -> tuple[subprocess.Popen, str]:
    """`vmss-sim serve` in a subprocess on a free loopback port, and its URL."""
    cmd = [sys.executable, "-m", "simulator.cli", "serve", "--port", "0", "--quiet",
           "--speed", str(speed)] + ([scenario] if scenario else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError(f"vmss-sim serve did not start (exit code {proc.wait()})")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    p.add_argument("--speed", type=float, default=60.0)
    args = p.parse_args(argv)
    proc, url = start_server(args.scenario, args.speed)
    try:
        print(f"vmss-sim serve at {url} ({args.scenario}, speed {args.speed:g})")
        cpu_before = cpu_seconds(proc.pid)
        result = run_load(url, args.clients, args.seconds)
        cpu_after = cpu_seconds(proc.pid)
        print(result.summary())
        if cpu_before is not None and cpu_after is not None:
            used = cpu_after - cpu_before
            print(f"  server CPU: {used:.1f} s over {result.seconds:.1f} s "
                  f"({used / result.seconds:.2f} of a core), "
                  f"{used / result.requests * 1e3:.2f} ms per request")
        stuck = settle(url, result)
    finally:
        proc.terminate()
        proc.wait(10)
    for error in result.errors[:20]:
        print("error:", error)
    if stuck:
        print(f"{len(stuck)} operations never ended, e.g. {stuck[:3]}")
    return 1 if result.errors or stuck else 0


if __name__ == "__main__":
    sys.exit(main())
