"""Turn forecasts and anomalies into alert candidates, one row per (rule, series problem).

Candidates are not alerts yet: :mod:`intentvision_dagster.alerting.log` decides which are new. The dedup key
is a pure function of the inputs, so evaluating the same forecast twice yields the same key.

``status`` says what the candidate means for an open alert: ``firing`` (the condition holds now), ``holding``
(a forecast breach back inside its threshold but not past its recovery level: keeps an open alert open at
``hold_severity``, never opens one) or ``ended`` (an anomaly episode that happened within the lookback but is
over: alerted once if it was never alerted, then resolved).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from intentvision_dagster.alerting.rules import (
    SEVERITY_RANK,
    AnomalyRule,
    BudgetRule,
    ForecastBreachRule,
    Rule,
)
from intentvision_dagster.series import parse_labels

CANDIDATE_COLUMNS = [
    "tenant",
    "metric",
    "series",
    "labels",
    "rule",
    "severity",
    "dedup_key",
    "summary",
    "details",
    "status",
    "hold_severity",
]
_ACCURACY_FIELDS = ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")


def evaluate(
    rules: Iterable[Rule],
    forecasts: pd.DataFrame,
    last_actuals: pd.DataFrame,
    anomalies: pd.DataFrame,
    accuracy: pd.DataFrame | None = None,
    units: Mapping[str, str] | None = None,
    actuals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Evaluate every rule; ``units`` (metric -> unit, e.g. from the metric catalog) only affects wording.

    ``actuals`` (``unique_id, ds, y`` of the period so far) is only needed by budget rules; without it they
    count the forecast alone.
    """
    rows: list[dict[str, Any]] = []
    for rule in rules:
        if isinstance(rule, ForecastBreachRule):
            rows.extend(
                _breaches(rule, forecasts, last_actuals, accuracy, (units or {}).get(rule.metric, ""))
            )
        elif isinstance(rule, BudgetRule):
            rows.extend(_budget(rule, forecasts, actuals, (units or {}).get(rule.metric, "")))
        elif rule.min_points > 1 or rule.window_points > 1:
            rows.extend(_anomaly_episodes(rule, anomalies))
        else:
            rows.extend(_anomaly_events(rule, anomalies))
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


def _matching(rule: Rule, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the series the rule watches; labels are parsed once per series, not per row."""
    if frame.empty:
        return frame
    series = frame[["unique_id", "metric", "labels"]].drop_duplicates("unique_id")
    keep = [
        uid
        for uid, metric, labels in series.itertuples(index=False)
        if rule.matches(metric, parse_labels(labels))
    ]
    return frame[frame["unique_id"].isin(keep)]


def _display(metric: str, labels: object) -> str:
    text = "" if labels is None or pd.isna(labels) else str(labels)
    return f"{metric}{{{text}}}" if text else metric


def _number(value: float) -> str:
    """Short human form: 80.4, 0.125, 3.2G; alerts are read on phones."""
    magnitude = abs(value)
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{round(value, 2):g}"


def _quantity(value: float, unit: str) -> str:
    return f"{_number(value)} {unit}".strip()


def _duration(delta: pd.Timedelta) -> str:
    hours = delta / pd.Timedelta(hours=1)
    if hours < 1:
        return f"{max(round(hours * 60), 1)} min"
    if hours <= 72:
        return f"{round(hours)} h"
    return f"{round(hours / 24, 1):g} d"


def _when(crossing: Any, now: pd.Timestamp, horizon: pd.Timedelta, prefix: str = "") -> str:
    """Time until a crossing, or "after <horizon>" when it does not happen within the forecast."""
    return f"after {_duration(horizon)}" if pd.isna(crossing) else f"{prefix}{_duration(crossing - now)}"


def _hours(value: Any, since: pd.Timestamp) -> float | None:
    return None if pd.isna(value) else round((pd.Timestamp(value) - since) / pd.Timedelta(hours=1), 2)


def json_safe(value: Any) -> Any:
    """JSON-safe scalar: NaN/NaT become null, timestamps ISO strings, numpy numbers Python numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isinf(value) else value


def _accuracy_lookup(accuracy: pd.DataFrame | None) -> dict[tuple[str, str], dict[str, Any]]:
    if accuracy is None or accuracy.empty:
        return {}
    rows = accuracy.drop_duplicates(["unique_id", "model"])
    fields = [name for name in _ACCURACY_FIELDS if name in rows.columns]
    return {
        (row["unique_id"], row["model"]): {name: json_safe(row[name]) for name in fields}
        for row in rows.to_dict("records")
    }


def _first_crossing(frame: pd.DataFrame, column: str, threshold: float, above: bool) -> pd.Series:
    """Per series, the first forecast timestamp whose ``column`` is at or past ``threshold`` (NaT if none)."""
    crossed = frame[column] >= threshold if above else frame[column] <= threshold
    return frame["ds"].where(crossed).groupby(frame["unique_id"]).min()


def _breaches(
    rule: ForecastBreachRule,
    forecasts: pd.DataFrame,
    last_actuals: pd.DataFrame,
    accuracy: pd.DataFrame | None,
    unit: str,
) -> list[dict[str, Any]]:
    frame = _matching(rule, forecasts)
    if frame.empty:
        return []
    above = rule.direction == "above"
    last = last_actuals.drop_duplicates("unique_id", keep="last").set_index("unique_id")
    if rule.horizon is not None:
        origin = frame["unique_id"].map(last["ds"])
        origin = origin.where(origin.notna(), frame.groupby("unique_id")["ds"].transform("min"))
        frame = frame[frame["ds"] <= origin + rule.horizon]
    level = "80" if rule.edge.endswith("_80") else "95"
    # The bound nearest the threshold crosses first, the farthest last: that is the uncertainty window.
    near, far = (f"hi_{level}", f"lo_{level}") if above else (f"lo_{level}", f"hi_{level}")
    crossings = {
        severity: {
            bound: _first_crossing(frame, column, line, above)
            for bound, column in (
                ("fire", rule.edge),
                ("earliest", near),
                ("expected", "yhat"),
                ("latest", far),
            )
        }
        for severity, line in rule.thresholds.items()
    }
    unrecovered = {
        severity: _first_crossing(frame, rule.edge, r, above).notna() for severity, r in rule.recovery.items()
    }
    uids = sorted(set(frame["unique_id"]))
    now_y = {uid: float(last.at[uid, "y"]) for uid in uids if uid in last.index}

    def past(value: float | None, line: float) -> bool:
        return value is not None and (value >= line if above else value <= line)

    firing: dict[str, str] = {}
    holding: dict[str, str] = {}
    for uid in uids:
        for severity in rule.thresholds:  # ascending severity: the last match is the highest
            if pd.notna(crossings[severity]["fire"].get(uid)):
                firing[uid] = severity
            if unrecovered[severity].get(uid, False) or past(now_y.get(uid), rule.recovery[severity]):
                holding[uid] = severity
    missing = sorted(uid for uid in firing if uid not in last.index)
    if missing:
        raise ValueError(f"rule {rule.name!r}: no last actual point for series {', '.join(missing[:5])}")
    info = frame.drop_duplicates("unique_id").set_index("unique_id")
    end = frame.groupby("unique_id")["ds"].max()
    scores = _accuracy_lookup(accuracy)
    verb = "cross" if above else "fall below"
    rows = []
    for uid in uids:
        if uid not in firing and (uid not in holding or uid not in last.index):
            continue
        severity = firing.get(uid) or holding[uid]
        line = rule.thresholds[severity]
        threshold = _quantity(line, unit)
        crossing = {bound: times.get(uid) for bound, times in crossings[severity].items()}
        series = info.loc[uid]
        now_ds, y_now = pd.Timestamp(last.at[uid, "ds"]), now_y[uid]
        horizon = end[uid] - now_ds
        model = str(series["model"])
        score = scores.get((uid, model), {})
        model_text = f"model {model}" + (
            f", backtest MASE {score['mase']:.2f}" if score.get("mase") is not None else ""
        )
        display = _display(series["metric"], series["labels"])
        if uid not in firing:
            recovery = _quantity(rule.recovery[severity], unit)
            state = (
                f"is back on the safe side of {threshold} but not yet past its recovery level {recovery} "
                f"(now {_number(y_now)})"
            )
        elif past(y_now, line):
            state = f"is already {rule.direction} {threshold} (now {_number(y_now)})"
        else:
            interval = " – ".join(_when(crossing[bound], now_ds, horizon) for bound in ("earliest", "latest"))
            state = (
                f"expected to {verb} {threshold} {_when(crossing['expected'], now_ds, horizon, 'in ')} "
                f"({level}% interval {interval}); now {_number(y_now)}"
            )
        details = {
            "kind": "forecast_breach",
            "threshold": line,
            "recovery": rule.recovery[severity],
            "unit": unit,
            "direction": rule.direction,
            "edge": rule.edge,
            "interval_level": int(level),
            "last_actual_ds": json_safe(now_ds),
            "last_actual_y": y_now,
            "first_breach_ds": json_safe(crossing["fire"]),
            "earliest_ds": json_safe(crossing["earliest"]),
            "expected_ds": json_safe(crossing["expected"]),
            "latest_ds": json_safe(crossing["latest"]),
            "earliest_hours": _hours(crossing["earliest"], now_ds),
            "expected_hours": _hours(crossing["expected"], now_ds),
            "latest_hours": _hours(crossing["latest"], now_ds),
            "horizon_end_ds": json_safe(end[uid]),
            "model": model,
            "accuracy": score,
            "description": rule.description,
        }
        rows.append(
            {
                "tenant": series["tenant"],
                "metric": series["metric"],
                "series": uid,
                "labels": series["labels"],
                "rule": rule.name,
                "severity": severity,
                "dedup_key": f"{series['tenant']}:{rule.name}:{uid}:{now_ds.isoformat()}",
                "summary": f"{display} {state}; {model_text}",
                "details": json.dumps(details),
                "status": "firing" if uid in firing else "holding",
                "hold_severity": holding.get(uid),
            }
        )
    return rows


def _period_end(ds: pd.Timestamp, period: str) -> pd.Timestamp:
    """The first timestamp after the period holding ``ds`` (only calendar months so far)."""
    return (ds.to_period("M") + 1).to_timestamp() if period == "month" else ds


def _budget(
    rule: BudgetRule, forecasts: pd.DataFrame, actuals: pd.DataFrame | None, unit: str
) -> list[dict[str, Any]]:
    """Per tenant: actual spend this period + forecast spend to the period's end, against the budget.

    Where the forecast stops before the period ends, its last day is carried forward (the message says so).
    """
    frame = _matching(rule, forecasts)
    if frame.empty:
        return []
    rows = []
    for tenant, tenant_frame in frame.groupby("tenant"):
        daily = tenant_frame.groupby("ds")[rule.edge].sum().sort_index()
        start = daily.index.min()
        period_start = start.to_period("M").to_timestamp() if rule.period == "month" else start
        period_end = _period_end(start, rule.period)
        spent = 0.0
        if actuals is not None and not actuals.empty:
            so_far = actuals[actuals["unique_id"].isin(set(tenant_frame["unique_id"]))]
            so_far = so_far[(so_far["ds"] >= period_start) & (so_far["ds"] < start)]
            spent = float(so_far["y"].sum())
        future = daily[daily.index < period_end]
        step = daily.index.to_series().diff().min() if len(daily) > 1 else pd.Timedelta(days=1)
        covered_to = future.index.max() + step
        carried = max(int((period_end - covered_to) / step), 0)
        cumulative = spent + future.cumsum()
        projected = float(cumulative.iloc[-1] + carried * future.iloc[-1])
        if projected < rule.budget:
            continue
        crossed = cumulative[cumulative >= rule.budget]
        if crossed.empty:  # crosses in the carried-forward days
            steps_needed = math.ceil((rule.budget - float(cumulative.iloc[-1])) / float(future.iloc[-1]))
            crossing = covered_to + step * max(steps_needed - 1, 0)
        else:
            crossing = crossed.index[0]
        display = f"{rule.metric} (sum of {tenant_frame['unique_id'].nunique()} series)"
        carried_text = (
            f"; forecast covers to {covered_to:%Y-%m-%d}, its last day carried forward to the period's end"
            if carried
            else ""
        )
        summary = (
            f"{display}: {rule.period} spend expected to reach {_quantity(projected, unit)} by "
            f"{period_end - pd.Timedelta(days=1):%Y-%m-%d}, "
            f"over the budget of {_quantity(rule.budget, unit)} "
            f"from {crossing:%Y-%m-%d} ({_quantity(spent, unit)} spent so far, forecast {rule.edge})"
            f"{carried_text}"
        )
        details = {
            "kind": "budget",
            "budget": rule.budget,
            "unit": unit,
            "period_start": json_safe(period_start),
            "period_end": json_safe(period_end),
            "spent": spent,
            "projected": projected,
            "crossing_ds": json_safe(crossing),
            "edge": rule.edge,
            "description": rule.description,
        }
        series = f"{tenant}/{rule.metric}"
        rows.append(
            {
                "tenant": tenant,
                "metric": rule.metric,
                "series": series,
                "labels": "",
                "rule": rule.name,
                "severity": rule.severity,
                "dedup_key": f"{tenant}:{rule.name}:{period_start:%Y-%m}",
                "summary": summary,
                "details": json.dumps(details),
                "status": "firing",
                "hold_severity": rule.severity,
            }
        )
    return rows


def _anomaly_events(rule: AnomalyRule, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    """One candidate per detector event whose worst point reaches the rule's severity."""
    frame = _matching(rule, anomalies)
    if frame.empty:
        return []
    newest = frame.groupby("unique_id")["ds"].max()
    frame = frame[frame["is_anomaly"].fillna(False).astype(bool) & frame["event_id"].notna()]
    onsets = frame.groupby("event_id")["ds"].transform("min")
    frame = frame[onsets >= frame["unique_id"].map(newest) - rule.lookback]
    frame = frame.assign(_rank=frame["severity"].map(SEVERITY_RANK).fillna(0)).sort_values("ds")
    minimum = SEVERITY_RANK[rule.min_severity]
    rows = []
    for (tenant, uid, event_id), event in frame.groupby(["tenant", "unique_id", "event_id"], sort=False):
        if event["_rank"].max() < minimum:
            continue
        ongoing = event["ds"].iloc[-1] >= newest[uid]
        rows.append(_anomaly_row(rule, tenant, uid, event, f"{tenant}:{rule.name}:{event_id}", ongoing))
    return rows


def _anomaly_episodes(rule: AnomalyRule, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    """One candidate per episode of "severity >= S on at least N of the last M points".

    An episode is a run of consecutive points at which the condition holds; its onset names it (dedup key).
    """
    frame = _matching(rule, anomalies)
    if frame.empty:
        return []
    frame = frame.sort_values(["unique_id", "ds"], ignore_index=True)
    hit = frame["is_anomaly"].fillna(False).astype(bool) & (
        frame["severity"].map(SEVERITY_RANK).fillna(0) >= SEVERITY_RANK[rule.min_severity]
    )
    counts = (
        hit.astype(int)
        .groupby(frame["unique_id"])
        .transform(lambda flags: flags.rolling(rule.window_points, min_periods=1).sum())
    )
    holds = counts >= rule.min_points
    starts = holds & ~holds.groupby(frame["unique_id"]).shift(fill_value=False)
    frame = frame.assign(
        _rank=frame["severity"].map(SEVERITY_RANK).fillna(0),
        _episode=starts.astype(int).groupby(frame["unique_id"]).cumsum(),
        _holds=holds,
        _hit=hit,
    )
    newest = frame.groupby("unique_id")["ds"].max()
    rows = []
    for (tenant, uid, _), episode in frame[frame["_holds"]].groupby(
        ["tenant", "unique_id", "_episode"], sort=False
    ):
        onset = episode["ds"].iloc[0]
        if onset < newest[uid] - rule.lookback:
            continue
        # The flagged points behind the episode: those of its first window onwards.
        window_start = frame.loc[episode.index[0] - rule.window_points + 1 : episode.index[-1]]
        flagged = window_start[window_start["_hit"] & (window_start["unique_id"] == uid)]
        ongoing = episode["ds"].iloc[-1] >= newest[uid]
        key = f"{tenant}:{rule.name}:{uid}:{onset.isoformat()}"
        rows.append(_anomaly_row(rule, tenant, uid, flagged, key, ongoing))
    return rows


def _anomaly_row(
    rule: AnomalyRule, tenant: str, uid: str, event: pd.DataFrame, dedup_key: str, ongoing: bool
) -> dict[str, Any]:
    worst = event.loc[event["_rank"].idxmax()]
    onset = event.iloc[0]
    peak = event.loc[event["anomaly_score"].abs().idxmax()]
    display = _display(onset["metric"], onset["labels"])
    last_ds = event["ds"].iloc[-1]
    details = {
        "kind": "anomaly",
        "event_id": json_safe(onset.get("event_id")),
        "onset_ds": json_safe(onset["ds"]),
        "last_ds": json_safe(last_ds),
        "points": len(event),
        "max_severity": worst["severity"],
        "peak_ds": json_safe(peak["ds"]),
        "peak_y": json_safe(peak["y"]),
        "peak_expected": json_safe(peak["expected"]),
        "peak_score": json_safe(peak["anomaly_score"]),
        "detector": json_safe(onset["detector"]),
        "reason": json_safe(onset["reason"]),
        "ongoing": bool(ongoing),
        "description": rule.description,
    }
    ended = "" if ongoing else f", ended {last_ds:%Y-%m-%d %H:%M} UTC"
    return {
        "tenant": tenant,
        "metric": onset["metric"],
        "series": uid,
        "labels": onset["labels"],
        "rule": rule.name,
        "severity": worst["severity"],
        "dedup_key": dedup_key,
        "summary": (
            f"{display}: {worst['severity']} anomaly since {onset['ds']:%Y-%m-%d %H:%M} UTC{ended} "
            f"({len(event)} points, peak score {_number(float(peak['anomaly_score']))}): "
            f"{onset['reason']}"
        ),
        "details": json.dumps(details),
        "status": "firing" if ongoing else "ended",
        "hold_severity": None,
    }
