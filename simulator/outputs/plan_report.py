"""The files of `vmss-sim plan`: plan.md, plan.csv, plan.json and plan.png.

plan.md states the question in words, answers it in one sentence per policy, shows P against
the request with its Wilson band, and the cost of the answer; plan.csv has one row per request
the search ran, plan.json the machine-readable answer. Every number comes from
`analysis.planning.Plan`; this module only words, tables and draws it. Files are written
through `folders.atomic_dir`, so an error leaves the previous folder or nothing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.planning import ArmPlan, Plan, Point, best_wilson_low, percent
from ..analysis.stats import Interval
from .cost_report import money, money_text
from .estimates import levels
from .folders import atomic_dir, atomic_write
from .formatting import _count, _md_table, _pct, _quote

FILES = ("plan.md", "plan.csv", "plan.json", "plan.png", "manifest.json")


# --- words ------------------------------------------------------------------------------------
def question(plan: Plan) -> str:
    g, t = plan.goal, plan.target
    return (f"How many VMs must the scale-out at minute {t.at_min:g} (timeline action "
            f"{t.action}) of scale set `{t.scale_set}` ask for, so that at least "
            f"{g.capacity:,} VMs are usable (Succeeded) at minute {g.by_min:g} in at least "
            f"{percent(g.confidence)} of cases?")


def _limit_text(plan: Plan) -> str:
    t = plan.target
    held = ("" if t.request_limit == t.limit else
            ", less the instances the rest of the timeline holds")
    return (f"the most this scale-out can ask for is {t.request_limit:,} VMs (the "
            f"{t.limit:,}-instance limit of a {t.limit_label} scale set{held})")


def _p(point: Point) -> str:
    return (f"P = {_pct(point.p_meet)} ({point.runs_meeting:,} of {point.replications:,} "
            "runs)")


def answer(plan: Plan, arm: ArmPlan) -> list[str]:
    """The answer in one sentence, then the other answer said plainly for what it is."""
    g, c = plan.goal, percent(plan.goal.confidence)
    what = f"P(at least {g.capacity:,} usable at minute {g.by_min:g})"
    rec, est = arm.point(arm.request_recommended), arm.point(arm.request_estimate)
    if rec is not None:
        first = (f"**{arm.label}: request {rec.request:,} VMs** (a buffer of "
                 f"{_count(plan.buffer_vms(rec))} at minute {g.by_min:g}). This is the "
                 "recommendation: the smallest "
                 f"request whose {g.interval_confidence:.0%} Wilson lower bound on {what} "
                 f"reaches {c}; there {_p(rec)}.")
    else:
        top = arm.point(plan.target.request_limit)
        first = (f"**{arm.label}: impossible within the instance limit.** No request has a "
                 f"{g.interval_confidence:.0%} Wilson lower bound on {what} that reaches {c}: "
                 f"{_limit_text(plan)}, and there {_p(top)}. The request is not clipped to the "
                 "limit: the goal needs more VMs than one scale set can hold (split it across "
                 "scale sets, or lower the goal).")
    if est is None:
        second = (f"The point estimate does not reach {c} either, at any request up to "
                  f"{plan.target.request_limit:,}.")
    elif est.request == arm.request_recommended:
        second = f"The point estimate first reaches {c} at the same request."
    else:
        second = (f"The point estimate alone first reaches {c} at {est.request:,} VMs ({_p(est)}):"
                  " that is the smallest request whose *estimate* reaches the confidence, not "
                  f"the recommendation, because its true P may still be below {c}.")
    return [f"- {first} {second}"]


def answer_lines(plan: Plan) -> list[str]:
    lines = [line for arm in plan.arms for line in answer(plan, arm)]
    saved = buffer_saved(plan)
    arms = {a.create_enabled: a for a in plan.arms}
    if saved is not None:
        lines.append(f"- **Resilient create saves a buffer of {saved:,} VMs** at this goal "
                     "(recommended requests, off minus on, same random numbers).")
    elif len(arms) == 2 and arms[True].request_recommended is not None:
        lines.append("- **Resilient create makes this goal possible**: without it no request "
                     "within the instance limit meets it.")
    return lines


def buffer_saved(plan: Plan) -> int | None:
    """Recommended request with Resilient create off minus on (both arms planned)."""
    arms = {a.create_enabled: a for a in plan.arms}
    if len(arms) < 2 or arms[True].request_recommended is None or \
            arms[False].request_recommended is None:
        return None
    return arms[False].request_recommended - arms[True].request_recommended


# --- numbers per point ------------------------------------------------------------------------
def costs(plan: Plan, point: Point) -> dict[str, Any]:
    """VM-minutes (means; Failed and shortfall with their 95% intervals) and their money."""
    cost = plan.scenario.cost
    frame = pd.DataFrame({"failed": point.failed_vm_minutes, "short": point.shortfall_vm_minutes})
    ivs = levels(frame, ["failed", "short"], plan.seed)  # the bootstrap `run` reports with
    failed, short = ivs["failed"], ivs["short"]
    out: dict[str, Any] = {"buffer_vms": plan.buffer_vms(point),
                           "buffer_vm_minutes": plan.buffer_vm_minutes(point),
                           "failed_vm_minutes": failed, "shortfall_vm_minutes": short}
    nan = Interval(math.nan, math.nan, math.nan, 0, "")
    out["buffer_cost"] = cost.vm_cost(out["buffer_vm_minutes"]) if cost else math.nan
    out["failed_cost"] = money(failed, cost.vm_hour) if cost else nan
    out["shortfall_cost"] = (money(short, cost.shortfall_vm_hour)
                             if cost and cost.shortfall_vm_hour is not None else nan)
    return out


def plan_frame(plan: Plan) -> pd.DataFrame:
    """plan.csv: one row per request evaluated (per policy arm), in request order."""
    rows = []
    for arm in plan.arms:
        for p in arm.points:
            c = costs(plan, p)
            row = {"arm": arm.label, "request": p.request, "replications": p.replications,
                   "runs_meeting": p.runs_meeting, "p_meet": p.p_meet.estimate,
                   "p_meet_low": p.p_meet.low, "p_meet_high": p.p_meet.high,
                   "usable_mean": float(p.usable.mean()),
                   "vms_short_mean": float(np.maximum(plan.goal.capacity - p.usable, 0).mean()),
                   "buffer_vms": c["buffer_vms"], "buffer_vm_minutes": c["buffer_vm_minutes"],
                   "buffer_cost": c["buffer_cost"]}
            for key in ("failed", "shortfall"):
                iv, cost_iv = c[f"{key}_vm_minutes"], c[f"{key}_cost"]
                row |= {f"{key}_vm_minutes": iv.estimate, f"{key}_vm_minutes_low": iv.low,
                        f"{key}_vm_minutes_high": iv.high, f"{key}_cost": cost_iv.estimate}
            row |= {"runs_rejected": p.runs_rejected, "step": p.step,
                    "recommended": p.request == arm.request_recommended,
                    "estimate": p.request == arm.request_estimate}
            rows.append(row)
    return pd.DataFrame(rows)


def _arm_json(plan: Plan, arm: ArmPlan) -> dict[str, Any]:
    at = arm.point(arm.request_recommended) or arm.point(plan.target.request_limit)
    c = costs(plan, at)
    return {"policy": arm.label, "resilient_create": arm.create_enabled,
            "request_estimate": arm.request_estimate,
            "request_recommended": arm.request_recommended,
            "impossible": arm.request_recommended is None,
            "at_request": at.request, "p_meet": at.p_meet.estimate, "p_meet_low": at.p_meet.low,
            "p_meet_high": at.p_meet.high, "runs_meeting": at.runs_meeting,
            "buffer_vms": c["buffer_vms"], "buffer_vm_minutes": c["buffer_vm_minutes"],
            "buffer_cost": c["buffer_cost"],
            "failed_vm_minutes": c["failed_vm_minutes"].estimate,
            "failed_cost": c["failed_cost"].estimate,
            "shortfall_vm_minutes": c["shortfall_vm_minutes"].estimate,
            "shortfall_cost": c["shortfall_cost"].estimate,
            "requests_evaluated": [p.request for p in sorted(arm.points, key=lambda p: p.step)],
            "monotone_violations": arm.monotone_violations,
            "wall_time_s": round(arm.wall_time_s, 3)}


def plan_json(plan: Plan) -> dict[str, Any]:
    """plan.json: the question's parameters, the first arm's answer at the top level (at the
    recommendation; at the request limit when impossible), and every arm under `arms`."""
    g, t, cost = plan.goal, plan.target, plan.scenario.cost
    arms = [_arm_json(plan, a) for a in plan.arms]
    out = {"question": question(plan), "scenario": plan.scenario.name, "scale_set": t.scale_set,
           "action": t.action, "action_at_min": t.at_min, "capacity": g.capacity,
           "by_min": g.by_min, "confidence": g.confidence,
           "interval_confidence": g.interval_confidence, "replications": plan.replications,
           "seed": plan.seed, "scale_in_after_min": g.scale_in_min,
           "request_limit": t.request_limit, "instance_limit": t.limit,
           "limit_label": t.limit_label, "currency": cost.currency if cost else None,
           "vm_hour": cost.vm_hour if cost else None,
           "shortfall_vm_hour": cost.shortfall_vm_hour if cost else None,
           **arms[0], "arms": arms, "buffer_saved": buffer_saved(plan), "notes": list(plan.notes)}
    return json.loads(json.dumps(out, default=float), parse_constant=lambda _: None)


# --- plan.md ----------------------------------------------------------------------------------
def _cost_rows(plan: Plan) -> list[list[str]]:
    cur = plan.scenario.cost.currency if plan.scenario.cost else ""
    rows = []
    for arm in plan.arms:
        for name, k in (("recommended", arm.request_recommended), ("estimate", arm.request_estimate)):
            p = arm.point(k)
            if p is None or (name == "estimate" and k == arm.request_recommended):
                continue
            c = costs(plan, p)
            row = [arm.label, f"{k:,} ({name})", _count(c["buffer_vms"]),
                   _count(c["buffer_vm_minutes"]), f"{c['failed_vm_minutes']}",
                   f"{c['shortfall_vm_minutes']}"]
            if plan.scenario.cost:
                row[3] += f" = {money_text(c['buffer_cost'], cur)}"
                row[4] += f" = {money_text(c['failed_cost'], cur)}"
                if not math.isnan(c["shortfall_cost"].estimate):
                    row[5] += f" = {money_text(c['shortfall_cost'], cur)}"
            rows.append(row)
    return rows


def plan_markdown(plan: Plan) -> str:
    g, t, cost = plan.goal, plan.target, plan.scenario.cost
    md = [f"# {plan.scenario.name}: plan for {g.capacity:,} usable VMs by minute {g.by_min:g}",
          ""] + _quote(plan.scenario.description)
    md += ["", "## Question", "", question(plan), "", "## Answer", ""] + answer_lines(plan) + [""]
    md += ["## P against the request", "", "![P against the request](plan.png)", "",
           f"Each request the search ran, over {plan.replications:,} replications from seed "
           f"{plan.seed} (the same random numbers at every request): the share of runs with at "
           f"least {g.capacity:,} usable VMs at minute {g.by_min:g}, with its "
           f"{g.interval_confidence:.0%} Wilson interval; `step` is the order of the search.", ""]
    md += _md_table(["policy", "request", "step", "runs meeting the goal", "P [Wilson]",
                     f"usable at minute {g.by_min:g} (mean)"],
                    [[a.label, f"{p.request:,}" + (" ← recommended" if p.request ==
                                                   a.request_recommended else ""),
                      str(p.step), f"{p.runs_meeting:,}", _pct(p.p_meet),
                      f"{p.usable.mean():,.2f}"] for a in plan.arms for p in a.points])
    span = g.scale_in_min - t.at_min
    md += ["## Cost", "", ("Priced at " + cost.price_text
                           + (f"; shortfall at {cost.shortfall_vm_hour:g} {cost.currency} per "
                              "VM-hour short" if cost.shortfall_vm_hour is not None else
                              "; the shortfall is not priced (no `shortfall_vm_hour`)") + "."
                           if cost else "No `[cost]` in the scenario: VM-minutes only."), "",
           f"The buffer is the instances beyond the goal, kept from the request (minute "
           f"{t.at_min:g}) until they are scaled in at minute {g.scale_in_min:g} ({span:g} "
           "minutes). Failed VM-minutes (instances that exist but are unusable) and the "
           "capacity shortfall (usable VMs below the scale set's capacity, which here is the "
           "request) are means per run over the whole horizon with 95% intervals. The lines "
           "overlap (a Failed VM of the buffer is in both), so they are not added up.", ""]
    md += _md_table(["policy", "request", "buffer VMs", "buffer VM-minutes",
                     "Failed VM-minutes", "shortfall VM-minutes"], _cost_rows(plan))
    md += ["## Method", "",
           "- Every request runs from the same seed, so VM i draws the same random numbers "
           "whatever the request (common random numbers): per replication, usable VMs can only "
           "grow with the request, and so does P. The search brackets the answer (starting at "
           "the goal, then a guess from a binomial model) and bisects, reusing every run; it "
           f"ran {sum(len(a.points) for a in plan.arms)} requests in all.",
           "- Usable VMs at minute MIN are the Succeeded VMs in the capacity sample at MIN, "
           "which holds everything that happened at that minute.",
           f"- The recommendation uses the Wilson lower bound so that a lucky estimate does not "
           f"understate the request; {plan.replications:,} replications let that bound reach at "
           f"most {best_wilson_low(plan.replications, g.interval_confidence):.4%}."]
    md += [f"- Monotonicity check: {a.label}: {a.monotone_violations} violations over "
           f"{len(a.points)} requests." for a in plan.arms]
    md += [f"- Note: {n}" for n in plan.notes]
    return "\n".join(md) + "\n"


# --- plan.png ---------------------------------------------------------------------------------
def plot_plan(plan: Plan, path: Path) -> Path:
    """P against the request with its Wilson interval at every request the search ran, the
    confidence and both answers; the right panel zooms in where P meets the confidence."""
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2)
    c = plan.goal.confidence
    for arm, colour in zip(plan.arms, ("tab:green", "tab:purple")):
        ks = np.array([p.request for p in arm.points])
        est = np.array([p.p_meet.estimate for p in arm.points])
        err = [est - [p.p_meet.low for p in arm.points], [p.p_meet.high for p in arm.points] - est]
        for ax in axes:
            ax.plot(ks, est, ":", color=colour, lw=0.8)  # only the runs are data, not the line
            ax.errorbar(ks, est, yerr=np.clip(err, 0, None), fmt="o", color=colour, ms=4,
                        capsize=3, label=f"{arm.label}: estimate, "
                                         f"{plan.goal.interval_confidence:.0%} Wilson interval")
            if arm.request_recommended is not None:
                ax.axvline(arm.request_recommended, color=colour, lw=1.2,
                           label=f"recommended: {arm.request_recommended:,}")
            if arm.request_estimate is not None and \
                    arm.request_estimate != arm.request_recommended:
                ax.axvline(arm.request_estimate, color=colour, lw=1, ls="--",
                           label=f"estimate reaches {percent(c)}: {arm.request_estimate:,}")
    lows = [p.p_meet.low for a in plan.arms for p in a.points if p.p_meet.high >= c - 0.02]
    axes[1].set_ylim(max(0.0, min(lows + [c]) - 0.01), 1.002)
    axes[0].set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.axhline(c, color="black", ls="--", lw=1, label=f"confidence {percent(c)}")
        ax.set_xlabel(f"request (VMs asked for at minute {plan.target.at_min:g})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"P(at least {plan.goal.capacity:,} usable at minute {plan.goal.by_min:g})")
    axes[1].set_title("near the confidence", fontsize=9)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{plan.scenario.name}: P against the request ({plan.replications:,} runs at "
                 "each request, same random numbers)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_plan(plan: Plan, out_dir: Path, info: dict[str, Any]) -> Path:
    """Write plan.md, plan.csv, plan.json, plan.png and manifest.json, atomically."""
    with atomic_dir(out_dir) as tmp:
        plan_frame(plan).to_csv(tmp / "plan.csv", index=False)
        atomic_write(tmp / "plan.json", json.dumps(plan_json(plan), indent=2) + "\n")
        plot_plan(plan, tmp / "plan.png")
        (tmp / "plan.md").write_text(plan_markdown(plan), encoding="utf-8")
        atomic_write(tmp / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")
    return Path(out_dir)
