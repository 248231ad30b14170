"""[cost]: prices the user names, read from the scenario or a price table, and money next to
VM-minutes in run and compare reports (plan's costs are in test_plan.py)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from simulator import load_scenario, parse_scenario, simulate
from simulator.cli import main
from simulator.outputs.cost_report import money
from simulator.outputs.report import key_figures, numbers

SCENARIO = """name = "priced"
horizon_min = 60
[scale_set]
name = "web"
[faults.create]
AllocationFailed = 0.1
[[timeline]]
at_min = 0
action = "create"
count = 20
"""


@pytest.fixture
def write(tmp_path):
    def _write(cost: str, table: str | None = None):
        if table is not None:
            (tmp_path / "prices.csv").write_text(table)
        path = tmp_path / "s.toml"
        path.write_text(SCENARIO + cost)
        return path
    return _write


def test_a_price_per_vm_hour_in_the_users_currency(write):
    sc = load_scenario(write('[cost]\ncurrency = "credits"\nvm_hour = 1.5\n'))
    assert (sc.cost.currency, sc.cost.vm_hour, sc.cost.shortfall_vm_hour) == ("credits", 1.5, None)
    assert sc.cost.vm_cost(120) == 3.0
    assert sc.cost.shortfall_cost(120) != sc.cost.shortfall_cost(120)  # NaN: not priced


def test_a_vm_size_is_priced_from_the_table_next_to_the_scenario(write):
    path = write('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "prices.csv"\n'
                 "shortfall_vm_hour = 3\n",
                 "vm_size,vm_hour,currency\nD2,0.1,EUR\nD4,0.2,EUR\n")
    sc = load_scenario(path)
    assert (sc.cost.vm_hour, sc.cost.vm_size, sc.cost.price_table) == (0.2, "D4", None)
    assert sc.cost.price_text == "0.2 EUR per VM-hour (D4)"
    # the resolved price travels with the scenario (a run's manifest reparses on its own)
    again = parse_scenario(sc.model_dump(mode="json", exclude_none=True))
    assert again.cost == sc.cost


BAD = {
    "both": ('[cost]\ncurrency = "EUR"\nvm_hour = 1\nvm_size = "D4"\nprice_table = "prices.csv"\n',
             None, "cost", "not both"),
    "neither": ('[cost]\ncurrency = "EUR"\n', None, "cost", "expected vm_hour"),
    "no size": ('[cost]\ncurrency = "EUR"\nprice_table = "prices.csv"\n', None, "cost",
                "needs vm_size"),
    "no currency": ("[cost]\nvm_hour = 1\n", None, "cost.currency", "Field required"),
    "negative": ('[cost]\ncurrency = "EUR"\nvm_hour = -1\n', None, "cost.vm_hour",
                 "greater than or equal to 0"),
    "missing table": ('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "nope.csv"\n',
                      None, "cost.price_table", "not found"),
    "unknown size": ('[cost]\ncurrency = "EUR"\nvm_size = "D8"\nprice_table = "prices.csv"\n',
                     "vm_size,vm_hour\nD4,0.2\n", "cost.vm_size", "expected one of its sizes, e.g. 'D4'"),
    "other currency": ('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "prices.csv"\n',
                       "vm_size,vm_hour,currency\nD4,0.2,USD\n", "cost.price_table",
                       "expected the same currency"),
    "bad price": ('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "prices.csv"\n',
                  "vm_size,vm_hour\nD4,cheap\n", "cost.price_table", "line 2"),
    "no column": ('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "prices.csv"\n',
                  "size,price\nD4,0.2\n", "cost.price_table", "expected a column 'vm_size'"),
    "priced twice": ('[cost]\ncurrency = "EUR"\nvm_size = "D4"\nprice_table = "prices.csv"\n',
                     "vm_size,vm_hour\nD4,0.2\nD4,0.3\n", "cost.price_table", "priced twice"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_cost_table_exits_2_naming_the_field(case, write, capsys):
    cost, table, field, expected = BAD[case]
    path = write(cost, table)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}" in err and expected in err and "Traceback" not in err


def test_run_report_puts_money_next_to_vm_minutes(write, tmp_path):
    path = write('[cost]\ncurrency = "EUR"\nvm_hour = 0.6\nshortfall_vm_hour = 6\n')
    out = tmp_path / "run"
    assert main(["run", str(path), "-n", "20", "--out", str(out), "-q", "-w", "1"]) == 0
    result = simulate(load_scenario(path), replications=20, seed=0, keep_events=False)
    levels = numbers(result).levels  # the report's own intervals, priced
    failed, short = levels["failed_vm_minutes"], levels["capacity_shortfall_vm_minutes"]
    report = (out / "report.md").read_text()
    answer = next(x for x in report.splitlines() if x.startswith("- **Failed VMs"))
    assert f"{failed.format()} Failed VM-minutes per run" in answer
    line = next(x for x in report.splitlines() if x.startswith("- **Cost**"))
    assert "at 0.6 EUR per VM-hour" in line
    assert f"{failed} VM-minutes per run" in line
    assert f"= **{money(failed, 0.6)} EUR**" in line  # the same interval, times 0.6 / 60
    assert money(failed, 0.6).estimate == pytest.approx(failed.estimate * 0.01)
    assert f"{short} VM-minutes per run = **{money(short, 6)} EUR** at 6 EUR per VM-hour short" in line
    assert "Cost at 0.6 EUR per VM-hour" in key_figures(result)
    info = json.loads((out / "manifest.json").read_text())
    assert info["scenario"]["cost"] == {"currency": "EUR", "vm_hour": 0.6, "shortfall_vm_hour": 6.0}


def test_no_cost_table_no_cost_line(write):
    result = simulate(load_scenario(write("")), replications=3, seed=0)
    assert "Cost" not in key_figures(result)


def test_compare_report_prices_each_arm_and_the_paired_difference(write, tmp_path):
    path = write('[cost]\ncurrency = "EUR"\nvm_hour = 0.6\n')
    text = SCENARIO.replace("AllocationFailed = 0.1", "OSProvisioningTimedOut = 0.2")
    path.write_text(text + '[cost]\ncurrency = "EUR"\nvm_hour = 0.6\n')
    out = tmp_path / "cmp"
    assert main(["compare", str(path), "-n", "20", "--out", str(out), "-q", "-w", "1"]) == 0
    md = (out / "compare.md").read_text()
    assert "## Cost" in md and "Mean cost per run at 0.6 EUR per VM-hour" in md
    row = next(x for x in md.splitlines() if x.startswith("| Failed VMs"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    table = pd.read_csv(out / "compare.csv").set_index("metric")
    r = table.loc["failed_vm_minutes"]
    assert cells[1] == f"{r['mean_a'] * 0.01:,.2f} EUR" and cells[2] == f"{r['mean_b'] * 0.01:,.2f} EUR"
    assert cells[3].endswith("EUR") and cells[3].startswith("-")  # on fails fewer VMs
    assert "shortfall" not in md.split("## Cost")[1].split("##")[0]  # not priced
