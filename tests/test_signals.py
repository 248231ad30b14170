"""Signals and worker processes: a stopped run takes its workers with it, at once.

Each test runs the real CLI in a session of its own, waits until its pool workers are busy,
signals it, and bounds every wait; whatever happens, the session is killed at the end.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from simulator.engine.runner import default_workers

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = str(ROOT / "scenarios" / "baseline.toml")
#: long enough to be still running whatever the machine's load: every test stops it early
LONG = ["-n", "20000", "-w", "2", "-q"]
COMMANDS = {
    "run": ["run", SCENARIO],
    "sweep": ["sweep", SCENARIO, "--grid", "faults.create.OSProvisioningTimedOut=0.01,0.02"],
}

needs_two_cores = pytest.mark.skipif(default_workers() < 2,
                                     reason="-w 2 runs in-process on a single core")


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """`vmss-sim ARGS` from this checkout, in a session of its own (a process group to kill)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "simulator.cli", *args], cwd=cwd, env=env,
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.fixture
def session() -> Iterator[list[subprocess.Popen]]:
    """Processes started by a test; their whole session is killed afterwards, pass or fail."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=60)


def busy_workers(proc: subprocess.Popen, count: int = 2, timeout: float = 120
                 ) -> list[psutil.Process]:
    """The run's pool workers, once each has done some work (so each is past its start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            workers = psutil.Process(proc.pid).children()
            if len(workers) >= count and all(w.cpu_times().user > 0.2 for w in workers):
                return workers
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    said = proc.stderr.read().decode()[-500:] if proc.poll() is not None else ""
    raise AssertionError(f"no {count} busy workers within {timeout} s (exit {proc.poll()}: {said})")


def assert_gone(workers: list[psutil.Process], timeout: float = 30) -> None:
    _, alive = psutil.wait_procs(workers, timeout=timeout)
    assert not alive, f"workers outlived their parent: {alive}"


@needs_two_cores
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_workers_die_with_their_parent(tmp_path, session, command, sig):
    """A caller reading the run's stdout and stderr sees them close: no worker holds them."""
    proc = start([*COMMANDS[command], *LONG, "--out", str(tmp_path / "out")], tmp_path)
    session.append(proc)
    workers = busy_workers(proc)
    os.kill(proc.pid, sig)  # the parent alone, as a supervisor or the OOM killer would
    _, err = proc.communicate(timeout=60)  # returns only once every holder of the pipes is gone
    assert_gone(workers)
    assert proc.returncode == (128 + signal.SIGTERM if sig == signal.SIGTERM else -signal.SIGKILL)
    assert b"Traceback" not in err


@needs_two_cores
@pytest.mark.parametrize("to_group", [True, False], ids=["Ctrl-C (group)", "parent only"])
def test_ctrl_c_cancels_the_pending_work_and_keeps_the_earlier_output(tmp_path, session,
                                                                      to_group):
    out = tmp_path / "out"
    first = start(["run", SCENARIO, "-n", "2", "-w", "1", "-q", "--out", str(out)], tmp_path)
    session.append(first)
    assert first.wait(timeout=120) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = start(["run", SCENARIO, *LONG, "--out", str(out)], tmp_path)
    session.append(proc)
    workers = busy_workers(proc)
    sent = time.monotonic()
    (os.killpg if to_group else os.kill)(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # before the fix the pool first ran every remaining replication: minutes at this size
    assert time.monotonic() - sent < 20
    assert proc.returncode == 130
    assert err.decode().strip() == "interrupted: nothing written"  # no worker tracebacks
    assert_gone(workers)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads(before["manifest.json"])["replications"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries left


@pytest.mark.parametrize("entry", ["cli", "api"])
def test_workers_are_capped_at_the_cores_available(tmp_path, capsys, monkeypatch, entry):
    from simulator import load_scenario, simulate
    from simulator.cli import main
    from simulator.engine import pool
    pools: list[int] = []
    real = pool.ProcessPoolExecutor

    def spy(max_workers: int, **kwargs):
        pools.append(max_workers)
        return real(max_workers=max_workers, **kwargs)
    monkeypatch.setattr(pool, "ProcessPoolExecutor", spy)
    cores = default_workers()
    if entry == "cli":
        assert main(["run", SCENARIO, "-n", "8", "-w", "1000", "-q",
                     "--out", str(tmp_path / "out")]) == 0
        assert (f"--workers 1000 is more than the {cores} cores available; using {cores}"
                in capsys.readouterr().err)
    else:
        simulate(load_scenario(SCENARIO), replications=8, workers=1000)
    assert pools == ([cores] if cores > 1 else [])


def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait(timeout=60)
    return proc.pid


@pytest.mark.parametrize("leftover", ["tmp", "old"])
def test_the_next_run_removes_what_a_killed_one_left_and_nothing_else(tmp_path, leftover):
    """Only vmss-sim's own names, of a process that is gone, for the same output, on this host."""
    from simulator.cli import main
    from simulator.outputs.folders import own_temporary
    host, dead = socket.gethostname(), _dead_pid()
    stale = tmp_path / f".out.vmss-sim-{leftover}-{host}-{dead}-0123abcd"
    (stale / "part").mkdir(parents=True)
    (stale / "part" / "events.parquet").write_bytes(b"half")
    kept = [own_temporary(tmp_path / "out", "tmp"),  # a live process: this one
            tmp_path / ".out.tmp-abcd1234",  # not vmss-sim's name
            tmp_path / f".out.vmss-sim-tmp-not-{host}-{dead}-0123abcd",  # another host's
            tmp_path / f".other.vmss-sim-tmp-{host}-{dead}-0123abcd",  # another output's
            tmp_path / f".out.vmss-sim-tmp-{host}-{dead}-0123abcd.keep",  # a longer name
            tmp_path / f"out.vmss-sim-tmp-{host}-{dead}-0123abcd"]  # not hidden
    for path in kept:
        path.mkdir()
    assert main(["run", SCENARIO, "-n", "2", "-w", "1", "-q",
                 "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out"] + [p.name for p in kept])


def test_a_file_written_in_place_leaves_no_stale_temporary(tmp_path):
    from simulator.outputs.folders import atomic_write
    host, dead = socket.gethostname(), _dead_pid()
    (tmp_path / f".sweep.md.vmss-sim-tmp-{host}-{dead}-0123abcd").write_text("half")
    atomic_write(tmp_path / "sweep.md", "# whole\n")
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.md"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_run_stopped_while_writing_leaves_nothing_after_the_next(tmp_path, session, sig):
    """A run writes its event log into a hidden folder as it goes: SIGTERM removes it at once,
    and after SIGKILL the next run into the same place does."""
    from simulator.cli import main
    proc = start(["run", SCENARIO, "-n", "20000", "-w", "1", "-q", "--out", "out"], tmp_path)
    session.append(proc)
    deadline = time.monotonic() + 120
    while (not (hidden := list(tmp_path.glob(".out.vmss-sim-tmp-*/events.parquet")))
           and proc.poll() is None and time.monotonic() < deadline):
        time.sleep(0.05)
    assert hidden, "the run should be writing its event log by now"
    os.kill(proc.pid, sig)
    proc.communicate(timeout=60)
    assert [p.name for p in tmp_path.iterdir()] == ([] if sig == signal.SIGTERM
                                                    else [hidden[0].parent.name])
    assert main(["run", SCENARIO, "-n", "2", "-w", "1", "-q",
                 "--out", str(tmp_path / "out")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
