"""Fuzzing the input side (issue 14): hypothesis makes hostile inputs of every kind a user can
give, so the next class of bad input is found by the suite, not by a user.

- scenario mappings generated from the pydantic schema, values pushed to extremes (0,
  negative, NaN, +-inf, huge, tiny), wrong types, tables and arrays nested past the limit,
  unknown keys;
- `--set` and `--grid` strings, both from the schema's paths and arbitrary text;
- calibration logs, CSV and Parquet, with random columns and types, and real event logs
  with a column damaged;
- run and sweep folders with random files missing, truncated or corrupted, for
  `resiliency-view` and a sweep's resume.

The property, for every example: the command returns 0, or 2 with one message (one `error:`
line) and no traceback; it ends within TIME_BOUND seconds; and no file outside its output
path is created, changed or removed (each example runs in a fresh folder that is also the
working folder).

Examples are derandomized (a function of the test's source) with no database, so CI runs the
same examples every time; the counts below keep the whole file near 40 s on 2 cores.
VMSS_FUZZ_EXAMPLES=N runs N examples of every test instead.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import tempfile
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, Union

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.model.schema import Scenario

from .test_bad_input import TINY, snapshot

TIME_BOUND = 60.0  # seconds per example: a hang fails the example instead of the suite

#: A small scale set that uses most of the format, so that most schema paths exist in it.
RICH = """horizon_min = 120
sample_every_min = 1
[scale_set.resiliencyPolicy]
resilientVMCreationPolicy = {enabled = true}
resilientVMDeletionPolicy = {enabled = true}
[faults]
create = {OSProvisioningTimedOut = 0.2, VMStartTimedOut = 0.1, AllocationFailed = 0.05}
delete = {TransientFailure = 0.3}
attach = {AllocationFailed = 0.1}
windows = [{start_min = 10, end_min = 40, create = {OSProvisioningTimedOut = 0.5}}]
scripted = [{vm = 0, operation = "create", attempts = [1], outcome = "VMStartTimedOut"}]
[timing]
create_duration = {kind = "lognormal", median = 3, sigma = 0.35}
delete_duration = {kind = "exponential", mean = 1.5}
create_error_duration = {kind = "fixed", value = 1}
error_durations = {OSProvisioningTimedOut = {kind = "empirical", samples = [8, 9]}}
[platform]
create_window_min = 30
delete_max_retries = 5
[[timeline]]
at_min = 0
action = "create"
count = 5
[[timeline]]
at_min = 50
action = "scale_in"
count = 2
[[timeline]]
at_min = 60
action = "delete"
vms = [0, 1]
[[timeline]]
at_min = 70
action = "set_capacity"
capacity = 4
[[timeline]]
at_min = 80
action = "attach"
count = 1
[[timeline]]
at_min = 90
action = "delete_failed"
"""


def examples(ci: int) -> settings:
    """Settings for one fuzz test: `ci` examples, or VMSS_FUZZ_EXAMPLES of them."""
    n = int(os.environ.get("VMSS_FUZZ_EXAMPLES", ci))
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Hang(BaseException):
    """A command ran past TIME_BOUND (a BaseException: the CLI must not turn it into exit 2)."""


@contextlib.contextmanager
def time_bound(seconds: float):
    def expire(signum, frame):
        raise Hang(f"still running after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def sandbox(template: Path | None = None):
    """A fresh folder, also the working folder, optionally holding a copy of `template`."""
    before = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="vmss-fuzz-") as name:
        root = Path(name)
        if template is not None:
            shutil.copytree(template, root / template.name)
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(before)


def holds(argv: list[str], root: Path, out: Path | None = None) -> int:
    """Run a command and check the property; return its exit code."""
    before = snapshot(root, skip=out)
    stdout, stderr = io.StringIO(), io.StringIO()
    with time_bound(TIME_BOUND), contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        code = main(argv)
    err = stderr.getvalue()
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        errors = [line for line in err.splitlines()
                  if line.startswith("error:") or ": error: " in line]
        assert len(errors) == 1, err
    assert snapshot(root, skip=out) == before, "a file outside the output path was touched"
    event(f"exit {code}")  # pytest --hypothesis-show-statistics shows how many ran through
    return code


# ------------------------------------------------------------------------------------------------
# values at the extremes, wrong types, deep nesting
# ------------------------------------------------------------------------------------------------
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, math.nan,
                     math.inf, -math.inf, 0.5, 1.0, 30.0, 59.999]),
    st.floats(0, 500), st.floats())
INTS = st.one_of(st.sampled_from([0, -1, 1, 2, 3, 99, 100, 101, 1000, 1001, 2 ** 63, 10 ** 30]),
                 st.integers(0, 20), st.integers())
CODES = ["OSProvisioningTimedOut", "VMStartTimedOut", "AllocationFailed", "TransientFailure",
         "InternalExecutionError", "Succeeded", "ResilientCreateWindowExpired"]
TEXT = st.one_of(st.sampled_from(["", "x", "create", "delete", "attach", "Failed", "../x",
                                  "a" * 300, "é", *CODES]), st.text(max_size=12))
DEEP = st.integers(33, 80).flatmap(lambda n: st.sampled_from([
    json.loads("[" * n + "]" * n), json.loads('{"a": ' * n + "1" + "}" * n)]))
LEAVES = st.one_of(FLOATS, INTS, st.booleans(), TEXT)
WRONG = st.one_of(LEAVES, st.lists(LEAVES, max_size=3), st.dictionaries(TEXT, LEAVES, max_size=2),
                  DEEP)


def sometimes_wrong(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """The typed value 9 times in 10, else a value of the wrong kind (or nested too deep)."""
    return st.integers(0, 9).flatmap(lambda k: WRONG if k == 0 else strategy)


def from_type(tp: Any) -> st.SearchStrategy:
    """Values for an annotation of the schema, pushed to extremes."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return from_type(args[0])
    if origin is Union:
        return st.one_of([from_type(a) for a in args if a is not type(None)])
    if origin is Literal:
        return st.one_of(st.sampled_from(args), TEXT)
    if origin in (list, tuple):
        item = args[0] if args else Any
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            return st.lists(from_type(item), min_size=2, max_size=2)
        return st.lists(sometimes_wrong(from_type(item)), max_size=3)
    if origin is dict:
        return st.dictionaries(st.one_of(st.sampled_from(CODES), TEXT),
                               sometimes_wrong(from_type(args[1])), max_size=3)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return from_model(tp)
    return {float: FLOATS, int: INTS, bool: st.booleans(), str: TEXT}.get(tp, WRONG)


def from_model(model: type[BaseModel]) -> st.SearchStrategy:
    """A mapping for a model: its required keys, some optional ones, now and then an unknown."""
    required, optional = {}, {}
    for name, field in model.model_fields.items():
        value = sometimes_wrong(from_type(field.annotation))
        (required if field.is_required() else optional)[field.alias or name] = value
    mapping = st.fixed_dictionaries(required, optional=optional)
    unknown = st.dictionaries(TEXT, LEAVES, max_size=1)
    return st.tuples(mapping, st.integers(0, 9), unknown).map(
        lambda t: {**t[2], **t[0]} if t[1] == 0 else t[0])


def schema_paths(tp: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every dotted path of the schema (tables and leaves; list items by index 0, tables of
    codes by a code), with its annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    found = [(prefix, tp)] if prefix else []
    if origin is typing.Annotated:
        return found[:0] + schema_paths(args[0], prefix)
    if origin is Union:
        return found + [p for a in args if a is not type(None)
                        for p in schema_paths(a, prefix)[1 if prefix else 0:]]
    if origin in (list, tuple) and args:
        return found + schema_paths(args[0], f"{prefix}.0")
    if origin is dict:
        return found + schema_paths(args[1], f"{prefix}.{CODES[0]}")
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return found + [p for name, f in tp.model_fields.items()
                        for p in schema_paths(f.annotation, f"{prefix}.{f.alias or name}"
                                              .lstrip("."))]
    return found


PATHS = sorted(dict(schema_paths(Scenario)).items())


def toml(value: Any) -> str:
    """A value as TOML text (an inline table or array for nested values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(toml(v) for v in value) + "]"


def toml_file(mapping: dict[str, Any]) -> str:
    return "".join(f"{toml(str(k))} = {toml(v)}\n" for k, v in mapping.items())


def _scalar(tp: Any) -> Any:
    """The scalar type under Annotated and Optional (float for `Optional[PositiveFloat]`)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _scalar(args[0])
    if origin is Union and len(args) == 2 and type(None) in args:
        return _scalar(next(a for a in args if a is not type(None)))
    return tp


#: Numbers of the right type at the edges of their range: most scenarios still run.
EDGES = {float: st.sampled_from([0.0, 5e-324, 1e-300, 1e-9, 0.5, 1.0, 7.0, 59.999, 1e6, 1e300,
                                 1.7976931348623157e308, -1.0, math.nan]),
         int: st.sampled_from([0, 1, 2, 3, 99, 100, 101, 1000, 1001, 10 ** 30, -1])}


def _in(data: Any, path: str) -> bool:
    """Whether a dotted path names a value of a mapping."""
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False
    return True


#: The numbers of RICH, by their schema paths: edge values for them make scenarios that run.
NUMBER_PATHS = [(p, _scalar(tp)) for p, tp in PATHS
                if _scalar(tp) in EDGES and _in(tomllib.loads(RICH), p)]


@st.composite
def edge_set_strings(draw) -> str:
    """A `--set` string giving a number of RICH its edge value."""
    path, tp = draw(st.sampled_from(NUMBER_PATHS))
    return f"{path}={toml(draw(EDGES[tp]))}"


@st.composite
def edge_grid_strings(draw) -> str:
    """A `--grid` string sweeping a number of RICH over edge values."""
    path, tp = draw(st.sampled_from(NUMBER_PATHS))
    values = draw(st.lists(EDGES[tp], min_size=1, max_size=2, unique_by=repr))
    return f"{path}=" + ",".join(toml(v) for v in values)


@st.composite
def set_strings(draw) -> str:
    """A `--set` string: a schema path with an extreme or wrong value, or arbitrary text."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=30))
    path, tp = draw(st.sampled_from(PATHS))
    return f"{path}={toml(draw(sometimes_wrong(from_type(tp))))}"


@st.composite
def grid_strings(draw) -> str:
    """A `--grid` string: a schema path with a few values, or arbitrary text."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=30))
    path, tp = draw(st.sampled_from(PATHS))
    values = draw(st.lists(sometimes_wrong(from_type(tp)), min_size=1, max_size=3))
    return f"{path}=" + ",".join(toml(v) for v in values)


# ------------------------------------------------------------------------------------------------
# scenarios, --set and --grid
# ------------------------------------------------------------------------------------------------
def test_the_base_scenarios_run(tmp_path, capsys):
    for name, text in (("tiny", TINY), ("rich", RICH)):
        (tmp_path / f"{name}.toml").write_text(text)
        assert main(["validate", str(tmp_path / f"{name}.toml")]) == 0


@examples(300)
@given(st.one_of(from_model(Scenario), st.dictionaries(TEXT, WRONG, max_size=4)))
def test_scenario_mappings_from_the_schema(mapping):
    """Each mapping is validated; one that is valid is also simulated (the engine alone: a
    `run` would spend most of its time drawing plots)."""
    with sandbox() as root:
        (root / "s.toml").write_text(toml_file(mapping), encoding="utf-8")
        if holds(["validate", str(root / "s.toml")], root) == 0:
            with time_bound(TIME_BOUND):
                simulate(load_scenario(root / "s.toml"), replications=1, keep_timeseries=False)


@examples(300)
@given(st.lists(set_strings(), min_size=1, max_size=3))
def test_set_strings(overrides):
    with sandbox() as root:
        (root / "s.toml").write_text(RICH)
        holds(["validate", str(root / "s.toml"), *sum((["--set", o] for o in overrides), [])],
              root)


@examples(30)
@given(st.lists(edge_set_strings(), min_size=1, max_size=2))
def test_runs_with_values_at_the_edges(overrides):
    with sandbox() as root:
        (root / "s.toml").write_text(RICH)
        out = root / "out"
        holds(["run", str(root / "s.toml"), *sum((["--set", o] for o in overrides), []),
               "-n", "2", "-w", "1", "-q", "--out", str(out)], root, out)


@examples(60)
@given(st.lists(grid_strings(), min_size=1, max_size=2))
def test_grid_strings(grids):
    with sandbox() as root:
        (root / "s.toml").write_text(TINY)
        out = root / "sw"
        holds(["sweep", str(root / "s.toml"), *sum((["--grid", g] for g in grids), []),
               "-n", "1", "-w", "1", "-q", "--out", str(out)], root, out)


@examples(12)
@given(edge_grid_strings())
def test_sweeps_over_values_at_the_edges(grid):
    with sandbox() as root:
        (root / "s.toml").write_text(RICH)
        out = root / "sw"
        holds(["sweep", str(root / "s.toml"), "--grid", grid, "-n", "1", "-w", "1", "-q",
               "--out", str(out)], root, out)


# ------------------------------------------------------------------------------------------------
# calibration logs
# ------------------------------------------------------------------------------------------------
LOG_NAMES = ["operation", "start_min", "end_min", "outcome", "replication", "time_min", "vm",
             "operation_id", "attempt", "state", "error", "scale_set", "deletion_status"]
COLUMN_VALUES = st.one_of(
    st.lists(FLOATS), st.lists(INTS.filter(lambda i: abs(i) < 2 ** 63)), st.lists(TEXT),
    st.lists(st.booleans()), st.lists(st.sampled_from(["create", "delete", "attach", "x"])),
    st.lists(st.sampled_from(CODES)), st.lists(st.none()), st.lists(LEAVES))


@st.composite
def random_logs(draw) -> pd.DataFrame:
    names = draw(st.lists(st.one_of(st.sampled_from(LOG_NAMES), st.text(max_size=8)),
                          max_size=8, unique=True))
    rows = draw(st.integers(0, 6))
    return pd.DataFrame({n: (draw(COLUMN_VALUES) + [None] * rows)[:rows] for n in names})


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "run"
    (out.parent / "s.toml").write_text(TINY.replace("count = 3", "count = 4") + """
[faults.create]
OSProvisioningTimedOut = 0.3
[faults.delete]
TransientFailure = 0.3
[[timeline]]
at_min = 30
action = "scale_in"
count = 2
""")
    assert main(["run", str(out.parent / "s.toml"), "-n", "2", "-w", "1", "-q",
                 "--out", str(out)]) == 0
    return out


@st.composite
def damaged_event_logs(draw, events: pd.DataFrame) -> pd.DataFrame:
    """A real event log with a column dropped, retyped or filled with random values, and
    rows dropped."""
    frame = events.copy()
    column = draw(st.sampled_from(list(frame.columns)))
    how = draw(st.sampled_from(["drop", "text", "random", "rows"]))
    if how == "drop":
        frame = frame.drop(columns=column)
    elif how == "text":
        frame[column] = frame[column].astype(str)
    elif how == "random":
        values = draw(COLUMN_VALUES)
        frame[column] = (values * len(frame))[:len(frame)] if values else None
    else:
        keep = draw(st.lists(st.integers(0, len(frame) - 1), max_size=len(frame)))
        frame = frame.iloc[sorted(set(keep))]
    return frame


@examples(200)
@given(data=st.data())
def test_calibration_logs(data, run_folder):
    events = pd.read_parquet(run_folder / "events.parquet")
    frame = data.draw(st.one_of(random_logs(), damaged_event_logs(events)))
    fmt = data.draw(st.sampled_from(["csv", "parquet", "bytes"]))
    with sandbox() as root:
        log = root / f"log.{'csv' if fmt == 'bytes' else fmt}"
        if fmt == "bytes":
            log.write_bytes(data.draw(st.binary(max_size=200)))
        elif fmt == "csv":
            frame.to_csv(log, index=False)
        else:
            try:
                frame.to_parquet(log, index=False)
            except Exception:  # noqa: BLE001 - pyarrow cannot store this mix: write it as CSV
                frame.to_csv(log, index=False)
        out = root / "faults.toml"
        holds(["calibrate", str(log), "--out", str(out)], root, out)


# ------------------------------------------------------------------------------------------------
# run and sweep folders, damaged
# ------------------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), INTS, TEXT,
                                     FLOATS.filter(math.isfinite)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(TEXT, inner, max_size=3)),
                           max_leaves=8)


@st.composite
def damage(draw, folder: Path) -> list[str]:
    """Damage random files of a folder: delete, truncate, garbage, other JSON, other Parquet."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    done = []
    for path in draw(st.lists(st.sampled_from(files), min_size=1, max_size=3, unique=True)):
        how = draw(st.sampled_from(["delete", "truncate", "garbage", "json", "parquet"]))
        if how == "delete":
            path.unlink()
        elif how == "truncate":
            data = path.read_bytes()
            path.write_bytes(data[:draw(st.integers(0, max(len(data) - 1, 0)))])
        elif how == "garbage":
            path.write_bytes(draw(st.binary(max_size=100)))
        elif how == "json":
            info = draw(JSON_VALUES)
            if path.name == "manifest.json" and draw(st.booleans()):  # vmss-sim's shape
                info = {"command": "run", "seed": 0, "replications": 1,
                        "scenario": draw(from_model(Scenario))}
            path.write_text(json.dumps(info))
        else:
            try:
                draw(random_logs()).to_parquet(path)
            except Exception:  # noqa: BLE001 - pyarrow cannot store this mix
                path.write_bytes(b"PAR1")
        done.append(f"{how} {path.relative_to(folder)}")
    return done


@examples(150)
@given(data=st.data())
def test_resiliency_view_on_damaged_run_folders(data, run_folder):
    with sandbox(run_folder) as root:
        folder = root / run_folder.name
        data.draw(damage(folder))
        holds(["resiliency-view", str(folder), "--at", str(data.draw(FLOATS)),
               "--replication", str(data.draw(st.integers(0, 3)))], root)


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-sweep")
    (root / "s.toml").write_text(TINY)
    assert main(["sweep", str(root / "s.toml"), "--grid", "horizon_min=50,60", "-n", "1",
                 "-w", "1", "-q", "--out", str(root / "sw")]) == 0
    return root / "sw"


@examples(10)
@given(data=st.data())
def test_sweep_resume_over_damaged_folders(data, sweep_folder):
    with sandbox(sweep_folder) as root:
        out = root / sweep_folder.name
        data.draw(damage(out))
        (root / "s.toml").write_text(TINY)
        holds(["sweep", str(root / "s.toml"), "--grid", "horizon_min=50,60", "-n", "1",
               "-w", "1", "-q", "--out", str(out)], root, out)
