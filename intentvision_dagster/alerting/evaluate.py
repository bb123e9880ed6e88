"""Turn forecasts and anomalies into alert candidates, one row per (rule, series problem).

Candidates are not alerts yet: :mod:`intentvision_dagster.alerting.log` decides which are new. The dedup key
is a pure function of the inputs, so evaluating the same forecast twice yields the same key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from intentvision_dagster.alerting.rules import SEVERITY_RANK, AnomalyRule, ForecastBreachRule, Rule
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
]
_ACCURACY_FIELDS = ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")


def evaluate(
    rules: Iterable[Rule],
    forecasts: pd.DataFrame,
    last_actuals: pd.DataFrame,
    anomalies: pd.DataFrame,
    accuracy: pd.DataFrame | None = None,
    units: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Evaluate every rule; ``units`` (metric -> unit, e.g. from the metric catalog) only affects wording."""
    rows: list[dict[str, Any]] = []
    for rule in rules:
        if isinstance(rule, ForecastBreachRule):
            rows.extend(
                _breaches(rule, forecasts, last_actuals, accuracy, (units or {}).get(rule.metric, ""))
            )
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
    level = "80" if rule.edge.endswith("_80") else "95"
    # The bound nearest the threshold crosses first, the farthest last: that is the uncertainty window.
    near, far = (f"hi_{level}", f"lo_{level}") if above else (f"lo_{level}", f"hi_{level}")

    def first_crossing(column: str) -> pd.Series:
        crossed = frame[column] >= rule.threshold if above else frame[column] <= rule.threshold
        return frame["ds"].where(crossed)

    per_series = (
        pd.DataFrame(
            {
                "unique_id": frame["unique_id"],
                "fire": first_crossing(rule.edge),
                "earliest": first_crossing(near),
                "expected": first_crossing("yhat"),
                "latest": first_crossing(far),
                "end": frame["ds"],
            }
        )
        .groupby("unique_id")
        .agg(
            fire=("fire", "min"),
            earliest=("earliest", "min"),
            expected=("expected", "min"),
            latest=("latest", "min"),
            end=("end", "max"),
        )
    )
    per_series = per_series[per_series["fire"].notna()]
    if per_series.empty:
        return []
    last = last_actuals.drop_duplicates("unique_id", keep="last").set_index("unique_id")
    missing = sorted(set(per_series.index) - set(last.index))
    if missing:
        raise ValueError(f"rule {rule.name!r}: no last actual point for series {', '.join(missing[:5])}")
    info = frame.drop_duplicates("unique_id").set_index("unique_id")
    scores = _accuracy_lookup(accuracy)
    threshold = _quantity(rule.threshold, unit)
    verb = "cross" if above else "fall below"
    rows = []
    for uid, crossing in per_series.iterrows():
        series = info.loc[uid]
        now_ds, now_y = pd.Timestamp(last.at[uid, "ds"]), float(last.at[uid, "y"])
        horizon = crossing["end"] - now_ds
        model = str(series["model"])
        score = scores.get((uid, model), {})
        model_text = f"model {model}" + (
            f", backtest MASE {score['mase']:.2f}" if score.get("mase") is not None else ""
        )
        display = _display(series["metric"], series["labels"])
        already = now_y >= rule.threshold if above else now_y <= rule.threshold
        if already:
            state = f"is already {rule.direction} {threshold} (now {_number(now_y)})"
        else:
            interval = " – ".join(_when(crossing[bound], now_ds, horizon) for bound in ("earliest", "latest"))
            state = (
                f"expected to {verb} {threshold} {_when(crossing['expected'], now_ds, horizon, 'in ')} "
                f"({level}% interval {interval}); now {_number(now_y)}"
            )
        details = {
            "kind": "forecast_breach",
            "threshold": rule.threshold,
            "unit": unit,
            "direction": rule.direction,
            "edge": rule.edge,
            "interval_level": int(level),
            "last_actual_ds": json_safe(now_ds),
            "last_actual_y": now_y,
            "first_breach_ds": json_safe(crossing["fire"]),
            "earliest_ds": json_safe(crossing["earliest"]),
            "expected_ds": json_safe(crossing["expected"]),
            "latest_ds": json_safe(crossing["latest"]),
            "earliest_hours": _hours(crossing["earliest"], now_ds),
            "expected_hours": _hours(crossing["expected"], now_ds),
            "latest_hours": _hours(crossing["latest"], now_ds),
            "horizon_end_ds": json_safe(crossing["end"]),
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
                "severity": rule.severity,
                "dedup_key": f"{series['tenant']}:{rule.name}:{uid}:{now_ds.isoformat()}",
                "summary": f"{display} {state}; {model_text}",
                "details": json.dumps(details),
            }
        )
    return rows


def _anomaly_events(rule: AnomalyRule, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    frame = _matching(rule, anomalies)
    if frame.empty:
        return []
    newest = frame.groupby("unique_id")["ds"].transform("max")
    frame = frame[frame["is_anomaly"].fillna(False).astype(bool) & frame["event_id"].notna()]
    onsets = frame.groupby("event_id")["ds"].transform("min")
    frame = frame[onsets >= newest[frame.index] - rule.lookback]
    frame = frame.assign(_rank=frame["severity"].map(SEVERITY_RANK).fillna(0)).sort_values("ds")
    minimum = SEVERITY_RANK[rule.min_severity]
    rows = []
    for (tenant, uid, event_id), event in frame.groupby(["tenant", "unique_id", "event_id"], sort=False):
        worst = event.loc[event["_rank"].idxmax()]
        if worst["_rank"] < minimum:
            continue
        onset = event.iloc[0]
        peak = event.loc[event["anomaly_score"].abs().idxmax()]
        display = _display(onset["metric"], onset["labels"])
        details = {
            "kind": "anomaly",
            "event_id": json_safe(event_id),
            "onset_ds": json_safe(onset["ds"]),
            "last_ds": json_safe(event["ds"].iloc[-1]),
            "points": len(event),
            "max_severity": worst["severity"],
            "peak_ds": json_safe(peak["ds"]),
            "peak_y": json_safe(peak["y"]),
            "peak_expected": json_safe(peak["expected"]),
            "peak_score": json_safe(peak["anomaly_score"]),
            "detector": json_safe(onset["detector"]),
            "reason": json_safe(onset["reason"]),
            "description": rule.description,
        }
        rows.append(
            {
                "tenant": tenant,
                "metric": onset["metric"],
                "series": uid,
                "labels": onset["labels"],
                "rule": rule.name,
                "severity": worst["severity"],
                "dedup_key": f"{tenant}:{rule.name}:{event_id}",
                "summary": (
                    f"{display}: {worst['severity']} anomaly since {onset['ds']:%Y-%m-%d %H:%M} UTC "
                    f"({len(event)} points, peak score {_number(float(peak['anomaly_score']))}): "
                    f"{onset['reason']}"
                ),
                "details": json.dumps(details),
            }
        )
    return rows
