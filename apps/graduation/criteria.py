"""The criteria a policy can set, how each is compared, and one function that holds measured
values against a policy. No threshold lives here: thresholds are policy rows.

A criterion's value comes from `selectors.config_measures` (what it reads is said there). A value
that could not be measured is `None`: it never passes a promotion (nothing proves it) and never
triggers a demotion (nothing shows degradation); the decision shows it as "not measured".
"""
from __future__ import annotations

from dataclasses import dataclass

from .models import GraduationPolicy, Kind


@dataclass(frozen=True)
class Criterion:
    name: str       # the policy field holding the threshold
    measure: str    # the key in config_measures' values
    label: str
    op: str         # ">=": the value must reach the threshold; "<=": must not exceed it
    unit: str


CRITERIA = (
    Criterion("min_trades", "trades", "Trades (research evidence)", ">=", "trades"),
    Criterion("min_oos_sharpe", "oos_sharpe", "Out-of-sample Sharpe", ">=", "ratio, annualised"),
    Criterion("max_drawdown", "max_drawdown", "Max drawdown (research evidence)", "<=", "fraction"),
    Criterion("max_pbo", "pbo", "Probability of backtest overfitting", "<=", "probability"),
    Criterion("min_dsr", "dsr", "Deflated Sharpe ratio", ">=", "probability"),
    Criterion("min_days_in_stage", "days_in_stage", "Days in stage", ">=", "days"),
    Criterion("min_trades_in_stage", "trades_in_stage", "Trades in stage", ">=", "trades"),
    Criterion("max_tracking_error", "tracking_error", "Tracking error vs replay", "<=", "fraction"),
    Criterion("max_live_drawdown", "live_drawdown", "Drawdown in stage (deployment equity)", "<=", "fraction"),
)
assert {c.name for c in CRITERIA} == set(GraduationPolicy.THRESHOLDS)


def passes(value, op: str, threshold) -> bool | None:
    """True/False, or None when the value was not measured."""
    if value is None:
        return None
    return value >= threshold if op == ">=" else value <= threshold


def hold_against(policy: GraduationPolicy, measures: dict) -> list[dict]:
    """Every criterion the policy sets, with its value, threshold and verdict.

    `measures`: {"values": {measure: value}, "sources": {measure: text}, "notes": {measure: text}}.
    """
    rows = []
    for c in CRITERIA:
        threshold = getattr(policy, c.name)
        if threshold is None:
            continue
        value = measures["values"].get(c.measure)
        rows.append({"name": c.name, "label": c.label, "unit": c.unit, "op": c.op, "value": value,
                     "threshold": threshold, "passed": passes(value, c.op, threshold),
                     "source": measures.get("sources", {}).get(c.measure, ""),
                     "note": measures.get("notes", {}).get(c.measure, "" if value is not None else "not measured")})
    return rows


def verdict(policy: GraduationPolicy, rows: list[dict]) -> bool:
    """Promotion: True when every criterion passes (an unmeasured one does not). Demotion: True
    when any criterion is measured failing. A policy that sets no criterion never acts."""
    if not rows:
        return False
    if policy.kind == Kind.PROMOTE:
        return all(r["passed"] is True for r in rows)
    return any(r["passed"] is False for r in rows)


def failing(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["passed"] is not True]


def describe(rows: list[dict]) -> str:
    """'Out-of-sample Sharpe 0.41 < 0.5; Trades in stage not measured' for a decision's reason."""
    parts = []
    for r in rows:
        if r["passed"] is None:
            parts.append(f"{r['label']} not measured")
        else:
            op = r["op"] if r["passed"] else {">=": "<", "<=": ">"}[r["op"]]
            parts.append(f"{r['label']} {_fmt(r['value'])} {op} {_fmt(r['threshold'])}")
    return "; ".join(parts)


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)
