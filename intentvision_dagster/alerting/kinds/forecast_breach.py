"""Forecast breach rules: fire when a series' forecast is expected to cross a threshold within its horizon."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.inputs import RuleInputs, display_name, json_safe, number, quantity
from intentvision_dagster.alerting.kinds.base import Rule
from intentvision_dagster.severity import SEVERITY_RANK

EDGES = ("hi_80", "hi_95", "yhat", "lo_80", "lo_95")
DIRECTIONS = ("above", "below")
_ACCURACY_FIELDS = ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")


@dataclass(frozen=True, kw_only=True)
class ForecastBreachRule(Rule):
    """Fire when the forecast's ``edge`` reaches a threshold (>= above, <= below) within the horizon.

    ``thresholds`` maps severity to threshold (warning and/or critical); the single ``threshold`` +
    ``severity`` form is the one-level shorthand. ``recovery`` maps severity to the level the series must get
    back to (forecast edge and current value) before an open alert of that severity clears: hysteresis, so a
    series hovering at the line does not flap. ``threshold`` is always the first level to trip.
    """

    kind: ClassVar[str] = "forecast_breach"
    yaml_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "type",
        "metric",
        "threshold",
        "direction",
        "edge",
        "severity",
        "thresholds",
        "recovery",
        "horizon",
        "labels",
        "description",
    )
    asset: ClassVar[str] = "forecasts"
    name: str
    metric: str
    threshold: float | None = None
    direction: str = "above"
    edge: str = "hi_95"
    severity: str = "warning"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    recovery: Mapping[str, float] = field(default_factory=dict)
    horizon: pd.Timedelta | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        thresholds = dict(self.thresholds) or (
            {} if self.threshold is None else {self.severity: float(self.threshold)}
        )
        if not thresholds:
            raise ValueError(f"rule {self.name!r}: give 'threshold' or 'thresholds'")
        ordered = sorted(thresholds, key=SEVERITY_RANK.__getitem__)
        first = thresholds[ordered[0]]
        set_field = object.__setattr__  # frozen dataclass: normalise once, here
        set_field(self, "thresholds", {severity: float(thresholds[severity]) for severity in ordered})
        set_field(self, "recovery", {s: float(self.recovery.get(s, thresholds[s])) for s in ordered})
        set_field(self, "threshold", float(first))
        set_field(self, "severity", ordered[-1])

    @classmethod
    def from_entry(cls, where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> Self:
        metric = config.required_metric(where, entry)
        if ("threshold" in entry) == ("thresholds" in entry):
            raise ConfigError(f"{where}: give exactly one of field 'threshold' or field 'thresholds'")
        severity = config.one_of(
            where, "severity", entry.get("severity", "warning"), config.BREACH_SEVERITIES
        )
        if "threshold" in entry:
            thresholds = {severity: config.number(where, "threshold", entry["threshold"])}
        else:
            thresholds = config.levels(where, "thresholds", entry["thresholds"])
        recovery = config.levels(where, "recovery", entry["recovery"]) if "recovery" in entry else {}
        direction = config.one_of(where, "direction", entry.get("direction", "above"), DIRECTIONS)
        above = direction == "above"
        for level, value in recovery.items():
            if level not in thresholds:
                raise ConfigError(
                    f"{where}: field 'recovery.{level}' has no matching threshold for {level!r}"
                )
            if (value > thresholds[level]) if above else (value < thresholds[level]):
                raise ConfigError(
                    f"{where}: field 'recovery.{level}' is {value:g}, expected "
                    f"{'at most' if above else 'at least'} the {level} threshold {thresholds[level]:g} "
                    f"(a series recovers on the safe side of the line)"
                )
        if {"warning", "critical"} <= set(thresholds) and (
            (thresholds["critical"] < thresholds["warning"])
            if above
            else (thresholds["critical"] > thresholds["warning"])
        ):
            raise ConfigError(
                f"{where}: field 'thresholds.critical' is {thresholds['critical']:g}, expected it "
                f"{'above' if above else 'below'} thresholds.warning ({thresholds['warning']:g})"
            )
        return cls(
            **common,
            metric=metric,
            thresholds=thresholds,
            recovery=recovery,
            direction=direction,
            edge=config.one_of(where, "edge", entry.get("edge", "hi_95" if above else "lo_95"), EDGES),
            horizon=config.duration(where, "horizon", entry["horizon"]) if "horizon" in entry else None,
        )

    def evaluate(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        unit = inputs.unit(self.metric)
        return _breaches(self, inputs.forecasts, inputs.last_actuals, inputs.accuracy, unit)

    @classmethod
    def message_fields(cls, details: Mapping[str, Any]) -> list[str]:
        """When the breach is expected, its uncertainty window, the value now and how good the model is."""
        hours = details.get("expected_hours")
        level = details.get("interval_level")
        accuracy = details.get("accuracy") or {}
        return [
            "*Expected*\n"
            + (
                f"in {hours:g} h ({details.get('expected_ds')} UTC)"
                if hours is not None
                else "after the horizon"
            ),
            f"*{level}% interval*\n"
            + " – ".join(
                f"{value:g} h" if value is not None else "after the horizon"
                for value in (details.get("earliest_hours"), details.get("latest_hours"))
            ),
            f"*Now*\n{details.get('last_actual_y'):g} {details.get('unit', '')} "
            f"(threshold {details.get('threshold'):g})",
            f"*Model*\n{details.get('model')}"
            + (f", backtest MASE {accuracy['mase']:.2f}" if accuracy.get("mase") is not None else "")
            + (
                f", 95% coverage {accuracy['coverage_95']:.0%}"
                if accuracy.get("coverage_95") is not None
                else ""
            ),
        ]

    def plot_threshold(self, metric: str) -> float | None:
        """The first level to trip: the line a forecast plot of this rule's metric draws."""
        return self.threshold if metric == self.metric else None


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
    frame = rule.matching(forecasts)
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
        threshold = quantity(line, unit)
        crossing = {bound: times.get(uid) for bound, times in crossings[severity].items()}
        series = info.loc[uid]
        now_ds, y_now = pd.Timestamp(last.at[uid, "ds"]), now_y[uid]
        horizon = end[uid] - now_ds
        model = str(series["model"])
        score = scores.get((uid, model), {})
        model_text = f"model {model}" + (
            f", backtest MASE {score['mase']:.2f}" if score.get("mase") is not None else ""
        )
        display = display_name(series["metric"], series["labels"])
        if uid not in firing:
            recovery = quantity(rule.recovery[severity], unit)
            state = (
                f"is back on the safe side of {threshold} but not yet past its recovery level {recovery} "
                f"(now {number(y_now)})"
            )
        elif past(y_now, line):
            state = f"is already {rule.direction} {threshold} (now {number(y_now)})"
        else:
            interval = " – ".join(_when(crossing[bound], now_ds, horizon) for bound in ("earliest", "latest"))
            state = (
                f"expected to {verb} {threshold} {_when(crossing['expected'], now_ds, horizon, 'in ')} "
                f"({level}% interval {interval}); now {number(y_now)}"
            )
        details = {
            "kind": rule.kind,
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
