"""The emulator over plain HTTP: ARM error bodies, api-versions, long-running operation
headers and status, the clock, limits and safety, the CLI, and agreement with `vmss-sim run`.
"""
from __future__ import annotations

import http.client
import logging
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator import parse_scenario, simulate
from simulator.outputs.view import resiliency_view
from simulator.serve.app import MAX_BODY_BYTES
from simulator.serve.clock import SpeedClock
from tests.conftest import scenario
from tests.serve_support import SUB, ss_path, serving

BOTH_ON = {"resilientVMCreationPolicy": {"enabled": True},
           "resilientVMDeletionPolicy": {"enabled": True}}
NEW = {"location": "westus", "sku": {"capacity": 2}, "properties": {"orchestrationMode": "Uniform"}}

# (method, path, body, raw body, status, ARM code): each against a served scale set "web"
ERRORS = [
    ("PUT", ss_path("new"), None, b'{"location": "westus", ', 400, "InvalidRequestContent"),
    ("PUT", ss_path("new"), None, b"", 400, "InvalidRequestContent"),
    ("PUT", ss_path("new"), None, b'{"sku": {"capacity": NaN}}', 400, "InvalidRequestContent"),
    ("PUT", ss_path("new"), None, b"[1, 2]", 400, "InvalidRequestFormat"),
    ("PUT", ss_path("new"), {"sku": {"capacity": 2}}, None, 400, "LocationRequired"),
    ("PATCH", ss_path("web"), {"sku": {"capacity": "three"}}, None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("web"), {"sku": {"capacity": -1}}, None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("web"), {"sku": {"capcity": 3}}, None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("web"), {"properties": {"resiliencyPolicy": {
        "resilientVMCreationPolicy": {"enabled": "yes"}}}}, None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("web"), {"properties": {"automaticRepairsPolicy": {
        "gracePeriod": "PT5M"}}}, None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("web"), {"sku": {"capacity": 101}}, None, 400, "InvalidParameter"),
    ("PATCH", ss_path("web"), {"properties": {"orchestrationMode": "Flexible"}}, None, 400,
     "PropertyChangeNotAllowed"),
    ("PATCH", ss_path("web", api="2022-11-01"), {"properties": {"resiliencyPolicy": BOTH_ON}},
     None, 400, "InvalidRequestFormat"),
    ("PATCH", ss_path("nope"), {"sku": {"capacity": 1}}, None, 404, "ResourceNotFound"),
    ("GET", ss_path("nope"), None, None, 404, "ResourceNotFound"),
    ("GET", ss_path("web", api=None), None, None, 400, "MissingApiVersionParameter"),
    ("GET", ss_path("web", api="2099-01-01"), None, None, 400, "NoRegisteredProviderFound"),
    ("GET", ss_path("web", "/virtualMachines/9"), None, None, 404, "NotFound"),
    ("GET", ss_path("web", "/virtualMachines?$expand=everything"), None, None, 400,
     "InvalidParameter"),
    ("GET", ss_path("web", "/virtualMachines?$expand=resiliencyView", api="2022-11-01"), None,
     None, 400, "InvalidParameter"),
    ("POST", ss_path("web", "/delete"), {"instanceIds": []}, None, 400, "InvalidRequestFormat"),
    ("POST", ss_path("web", "/delete"), {"instanceIds": ["0"]}, None, 409, "OperationNotAllowed"),
    ("POST", ss_path("web", "/delete"), {"instanceIds": ["5"]}, None, 404, "NotFound"),
    ("POST", ss_path("web", "/delete?forceDeletion=maybe"), {"instanceIds": ["0"]}, None, 400,
     "InvalidParameter"),
    ("DELETE", ss_path("web"), None, None, 405, "MethodNotAllowed"),
    ("GET", "/no/such/route", None, None, 404, "NotFound"),
    ("POST", "/_emulator/advance?minutes=-1", None, None, 400, "InvalidParameter"),
    ("POST", "/_emulator/advance?minutes=soon", None, None, 400, "InvalidParameter"),
    ("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westus/operations/x"
            "?api-version=2024-07-01", None, None, 404, "NotFound"),
]


@pytest.fixture(scope="module")
def served():
    with serving(scenario([])) as s:
        assert s.call("PUT", ss_path("web"), NEW)[0] == 201
        yield s


@pytest.mark.parametrize("method,path,body,raw,status,code", ERRORS,
                         ids=[f"{e[4]}-{e[5]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_are_arm_error_bodies_with_the_platforms_status(served, method, path, body, raw,
                                                               status, code):
    got, headers, answer = served.call(method, path, body, raw)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert headers["content-type"] == "application/json"
    assert served.call("GET", ss_path("web"))[2]["sku"]["capacity"] == 2  # nothing changed


def test_an_older_api_version_neither_shows_nor_takes_the_resiliency_policy(served):
    new = served.call("GET", ss_path("web"))[2]["properties"]
    old = served.call("GET", ss_path("web", api="2022-11-01"))[2]["properties"]
    assert new["resiliencyPolicy"] == {"resilientVMCreationPolicy": {"enabled": False},
                                       "resilientVMDeletionPolicy": {"enabled": False}}
    assert "resiliencyPolicy" not in old and old["orchestrationMode"] == "Uniform"


def test_automatic_repairs_tags_and_unknown_members_are_kept_shown_or_ignored(served):
    """automaticRepairsPolicy is checked and shown (not simulated); a real payload's other
    members (virtualMachineProfile, ...) are ignored."""
    status, _, body = served.call("PATCH", ss_path("web"), {
        "tags": {"team": "infra"}, "properties": {
            "automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M"},
            "virtualMachineProfile": {"osProfile": {"computerNamePrefix": "web"}}}})
    assert status == 200 and body["tags"] == {"team": "infra"}
    assert body["properties"]["automaticRepairsPolicy"] == {
        "enabled": True, "gracePeriod": "PT30M", "repairAction": "Replace"}
    assert "virtualMachineProfile" not in body["properties"]


def test_request_bodies_are_size_limited_with_or_without_a_content_length(served):
    big = b'{"tags": {"x": "' + b"a" * MAX_BODY_BYTES + b'"}}'
    assert served.call("PATCH", ss_path("web"), raw=big)[0] == 413
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PATCH", ss_path("web"), body=iter([big[:1000], big[1000:]]),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    assert resp.status == 413 and b"RequestEntityTooLarge" in resp.read()


def test_keep_alive_requests_are_answered_at_once(served):
    """Nagle's algorithm is off on the server's connections: a keep-alive request is not held
    ~40 ms for a delayed ACK (as it was when the listening socket had protocol 0)."""
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    took = []
    for _ in range(15):
        start = time.perf_counter()
        conn.request("GET", "/_emulator/clock")
        conn.getresponse().read()
        took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.02, took


def test_paths_and_names_are_case_insensitive_as_in_arm(served):
    path = ss_path("WEB", "/VirtualMachines/0?$expand=resiliencyView").replace(
        "/resourceGroups/", "/RESOURCEGROUPS/").replace("Microsoft.Compute", "microsoft.compute")
    status, _, vm = served.call("GET", path)
    assert status == 200 and vm["name"] == "web_0"
    assert vm["properties"]["resilientVMDeletionStatus"] == "Disabled"


def test_a_long_running_operation_answers_like_arm(served):
    status, headers, body = served.call("PATCH", ss_path("web"), {"sku": {"capacity": 3}})
    assert status == 200 and body["properties"]["provisioningState"] == "Updating"
    op_url, location = headers["azure-asyncoperation"], headers["location"]
    assert re.fullmatch(rf"{served.url}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/"
                        r"westus/operations/[0-9a-f-]{36}\?api-version=2024-07-01", op_url)
    assert location == op_url + "&monitor=true" and "retry-after" not in headers  # manual clock
    path = lambda url: url.removeprefix(served.url)  # noqa: E731
    status, _, op = served.call("GET", path(op_url))
    assert status == 200 and op["status"] == "InProgress" and "endTime" not in op
    assert served.call("GET", path(location))[0] == 202
    served.advance_to(served.minute() + 5)
    op = served.call("GET", path(op_url))[2]
    assert op["status"] == "Succeeded" and op["endTime"] > op["startTime"]
    assert served.call("GET", path(location))[0] == 200
    assert served.call("GET", ss_path("web"))[2]["properties"]["provisioningState"] == "Succeeded"


def test_the_clock_manual_and_by_speed():
    with serving() as s:
        assert s.call("GET", "/_emulator/clock")[2] | {"time": None} == {
            "minute": 0.0, "manual": True, "speed": None, "time": None}
        assert s.call("POST", "/_emulator/advance?minutes=2.5")[2]["minute"] == 2.5
    ticks = iter([100.0, 101.5, 101.5])  # the clock starts at 100 s, is read at 101.5 s
    with serving(clock=SpeedClock(speed=60, timer=lambda: next(ticks))) as s:
        clock = s.call("GET", "/_emulator/clock")[2]
        assert (clock["minute"], clock["manual"], clock["speed"]) == (90.0, False, 60)
        status, _, body = s.call("POST", "/_emulator/advance?minutes=1")
        assert (status, body["error"]["code"]) == (409, "ClockNotManual")


def test_an_unhandled_error_is_a_500_with_an_arm_body_and_a_log_line(caplog):
    with serving() as s:
        def broken() -> float:
            raise RuntimeError("a bug")
        s.emulator.sync = broken
        with caplog.at_level(logging.ERROR, logger="simulator.serve"):
            status, _, body = s.call("GET", "/_emulator/clock")
        assert (status, body["error"]["code"]) == (500, "InternalServerError")
        assert "unhandled error in GET /_emulator/clock" in caplog.text and "a bug" in caplog.text
        del s.emulator.sync
        assert s.call("GET", "/_emulator/clock")[0] == 200  # still serving


def test_nothing_from_a_request_is_written_to_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with serving(scenario([])) as s:
        for name in ("..", "a..b", "%2e%2e%2fetc", "web", "x" * 70):
            s.call("PUT", ss_path(name), {**NEW, "tags": {"file": "../../etc/passwd"}})
            s.call("GET", ss_path(name, "/virtualMachines/..%2f..%2f"))
        s.call("PATCH", ss_path("web"), raw=b'{"__import__": "os"}')
    assert list(tmp_path.iterdir()) == []


def test_the_emulator_and_vmss_sim_run_agree_minute_by_minute():
    """The same scenario and seed, the same actions at the same minutes: every VM's name,
    provisioningState and resilientVMDeletionStatus agree with `vmss-sim run`'s events, read
    through `resiliency-view`, at every checkpoint (both are the one engine)."""
    base = {"name": "same", "horizon_min": 200,
            "scale_set": {"name": "web", "orchestration": "Flexible", "resiliencyPolicy": BOTH_ON},
            "faults": {"create": {"OSProvisioningTimedOut": 0.25, "AllocationFailed": 0.05},
                       "delete": {"TransientFailure": 0.3}}}
    requests = [(0, "PUT", "", {"location": "westus", "sku": {"capacity": 30}, "properties": {
                    "orchestrationMode": "Flexible", "resiliencyPolicy": BOTH_ON}}),
                (12.25, "PATCH", "", {"sku": {"capacity": 18}}),
                (20.5, "PATCH", "", {"properties": {"resiliencyPolicy": {
                    "resilientVMDeletionPolicy": {"enabled": False}}}}),
                (40.75, "POST", "/delete", None),
                (41.5, "PATCH", "", {"sku": {"capacity": 25}})]
    checkpoints = [k * 2.5 for k in range(61)]
    seen, deleted = {}, []
    with serving(base, seed=11) as s:
        schedule = sorted([(m, 1, None) for m in checkpoints] + [(r[0], 0, r) for r in requests],
                          key=lambda x: (x[0], x[1]))
        for minute, _, req in schedule:
            s.advance_to(minute)
            if req is None:
                vms = s.call("GET", ss_path("web", "/virtualMachines?$expand=resiliencyView"))[2]
                seen[minute] = [(v["name"], v["properties"]["provisioningState"],
                                 v["properties"]["resilientVMDeletionStatus"])
                                for v in vms["value"]]
                continue
            _, method, tail, body = req
            if tail == "/delete":  # two VMs that are Succeeded (so idle) now
                names = [n for n, state, _ in seen[40.0] if state == "Succeeded"][:2]
                deleted = [int(n.rpartition("_")[2], 16) for n in names]
                body = {"instanceIds": names}
            assert s.call(method, ss_path("web", tail), body)[0] in (200, 201, 202)
    timeline = [{"at_min": 0, "action": "set_capacity", "capacity": 30},
                {"at_min": 12.25, "action": "set_capacity", "capacity": 18},
                {"at_min": 20.5, "action": "set_policy", "resiliencyPolicy": {
                    "resilientVMDeletionPolicy": {"enabled": False}}},
                {"at_min": 40.75, "action": "delete", "vms": deleted},
                {"at_min": 41.5, "action": "set_capacity", "capacity": 25}]
    sc = parse_scenario({**base, "timeline": timeline})
    events = simulate(sc, replications=1, seed=11).events
    assert len(deleted) == 2
    for minute in checkpoints:
        view = resiliency_view(events, sc, minute)["value"]
        expected = [(v["name"], v["properties"]["provisioningState"],
                     v["properties"]["resilientVMDeletionStatus"]) for v in view]
        assert seen[minute] == expected, minute
    assert {state for vms in seen.values() for _, state, _ in vms} >= {"Creating", "Succeeded",
                                                                        "Failed", "Deleting"}


def test_vmss_sim_serve_says_where_it_listens_and_binds_loopback(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "serve", "--port", "0",
                             "--manual-clock", "--quiet"], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = re.search(r"listening on (http://[\d.]+:\d+)", lines[1]).group(1)
        assert url.startswith("http://127.0.0.1:") and "loopback only" in lines[1]
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/_emulator/clock")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(10)
    both = subprocess.run([sys.executable, "-m", "simulator.cli", "serve", "--speed", "2",
                           "--manual-clock"], capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with" in both.stderr
