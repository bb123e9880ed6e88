"""Forecast breach rules: page when a series is likely to reach a threshold within its horizon.

A severity fires when the probability that the series reaches that severity's line within the horizon (from
the forecast's predictive distribution, :mod:`~intentvision_dagster.alerting.probability`) is at least the
severity's ``min_probability``. :meth:`ForecastBreachRule.assess` is the decision, one row per series; the
alert sensor and ``intentvision capacity`` both call it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.inputs import (
    RuleInputs,
    display_name,
    duration,
    json_safe,
    number,
    quantity,
    utc_time,
)
from intentvision_dagster.alerting.kinds.base import Rule
from intentvision_dagster.alerting.probability import (
    CROSSING_INTERVAL,
    EDGE_PROBABILITY,
    breach_outlook,
    mirrored_edge,
)
from intentvision_dagster.chart_marks import Crossing, ThresholdLine
from intentvision_dagster.severity import SEVERITY_RANK

EDGES = ("hi_80", "hi_95", "yhat", "lo_80", "lo_95")
DIRECTIONS = ("above", "below")
DEFAULT_MIN_PROBABILITY = 0.8
"""A rule that gives neither ``min_probability`` nor ``edge`` pages at the shipped disk rule's warning bar
(chosen on the tune split of ``make bench-capacity``)."""
_ACCURACY_FIELDS = ("mae", "mae_recent", "rmse", "mase", "coverage_80", "coverage_95", "backtest_hours")
DECISION_COLUMNS = [
    "unique_id",
    "pages",
    "severity",
    "probability",
    "crossing_ds",
    "crossing_lo",
    "crossing_hi",
    "current",
    "model",
]
"""The decision per series, as ``intentvision capacity`` writes it."""
ASSESSMENT_COLUMNS = [*DECISION_COLUMNS, "current_ds", "line", "hold_severity", "horizon_end"]
"""What :meth:`ForecastBreachRule.assess` returns per series (``line``: the threshold the figures are for)."""


@dataclass(frozen=True, kw_only=True)
class ForecastBreachRule(Rule):
    """Fire a severity when P(the series reaches its line within the horizon) >= its ``min_probability``.

    ``thresholds`` maps severity to line (warning and/or critical); the single ``threshold`` + ``severity``
    form is the one-level shorthand, and ``threshold`` with a ``min_probability`` mapping puts several
    severities on one line (``{warning: 0.5, critical: 0.9}``: likely warns, near-certain is critical).
    ``min_probability`` is one number for every severity or a mapping per severity; ``edge`` (the old form:
    which band must touch the line) is shorthand for the probability at which that band touches it
    (``hi_95``: 0.025, ``hi_80``: 0.10, ``yhat``: 0.5, ``lo_80``: 0.9, ``lo_95``: 0.975; mirrored for
    ``below``). ``recovery`` maps severity to the level the series must get back past (its breach
    probability there below the bar, and the value now) before an open alert clears: hysteresis.
    ``threshold`` is always the first level to trip.
    """

    kind: ClassVar[str] = "forecast_breach"
    yaml_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "type",
        "metric",
        "threshold",
        "direction",
        "edge",
        "min_probability",
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
    edge: str | None = None
    min_probability: float | Mapping[str, float] | None = None
    severity: str = "warning"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    recovery: Mapping[str, float] = field(default_factory=dict)
    horizon: pd.Timedelta | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        wanted = self.min_probability
        thresholds = dict(self.thresholds)
        if not thresholds and self.threshold is not None:
            severities = list(wanted) if isinstance(wanted, Mapping) else [self.severity]
            thresholds = {severity: float(self.threshold) for severity in severities}
        if not thresholds:
            raise ValueError(f"rule {self.name!r}: give 'threshold' or 'thresholds'")
        ordered = sorted(thresholds, key=SEVERITY_RANK.__getitem__)
        if isinstance(wanted, Mapping):
            if set(wanted) != set(ordered):
                raise ValueError(
                    f"rule {self.name!r}: min_probability has severities {sorted(wanted)}, "
                    f"thresholds {sorted(ordered)}"
                )
            probability = {severity: float(wanted[severity]) for severity in ordered}
        else:
            if wanted is None:
                edge = (
                    self.edge if self.direction == "above" or self.edge is None else mirrored_edge(self.edge)
                )
                wanted = DEFAULT_MIN_PROBABILITY if edge is None else EDGE_PROBABILITY[edge]
            probability = dict.fromkeys(ordered, float(wanted))
        set_field = object.__setattr__  # frozen dataclass: normalise once, here
        set_field(self, "thresholds", {severity: float(thresholds[severity]) for severity in ordered})
        set_field(self, "recovery", {s: float(self.recovery.get(s, thresholds[s])) for s in ordered})
        set_field(self, "min_probability", probability)
        set_field(self, "threshold", float(thresholds[ordered[0]]))
        set_field(self, "severity", ordered[-1])

    @classmethod
    def from_entry(cls, where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> Self:
        metric = config.required_metric(where, entry)
        if ("threshold" in entry) == ("thresholds" in entry):
            raise ConfigError(f"{where}: give exactly one of field 'threshold' or field 'thresholds'")
        if "edge" in entry and "min_probability" in entry:
            raise ConfigError(
                f"{where}: give field 'min_probability' or the older field 'edge', not both "
                "(edge hi_95 is min_probability 0.025, hi_80 0.1, yhat 0.5)"
            )
        probability = _min_probability(where, entry.get("min_probability"))
        severity = config.one_of(
            where, "severity", entry.get("severity", "warning"), config.BREACH_SEVERITIES
        )
        if "threshold" in entry:
            line = config.number(where, "threshold", entry["threshold"])
            if isinstance(probability, Mapping) and "severity" in entry:
                raise ConfigError(
                    f"{where}: field 'severity' and a 'min_probability' mapping both name severities; "
                    "the mapping's keys are the severities of the one threshold"
                )
            severities = list(probability) if isinstance(probability, Mapping) else [severity]
            thresholds = dict.fromkeys(severities, line)
        else:
            thresholds = config.levels(where, "thresholds", entry["thresholds"])
            if isinstance(probability, Mapping) and set(probability) != set(thresholds):
                raise ConfigError(
                    f"{where}: field 'min_probability' has severities {sorted(probability)}, expected the "
                    f"severities of 'thresholds' ({sorted(thresholds)}) or one number for all"
                )
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
        edge = config.one_of(where, "edge", entry["edge"], EDGES) if "edge" in entry else None
        return cls(
            **common,
            metric=metric,
            thresholds=thresholds,
            recovery=recovery,
            direction=direction,
            edge=edge,
            min_probability=probability,
            horizon=config.duration(where, "horizon", entry["horizon"]) if "horizon" in entry else None,
        )

    def evaluate(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        unit = inputs.unit(self.metric)
        return _breaches(self, inputs.forecasts, inputs.last_actuals, inputs.accuracy, unit)

    def assess(
        self, forecasts: pd.DataFrame, last_actuals: pd.DataFrame, lines: pd.Series | None = None
    ) -> pd.DataFrame:
        """The rule's decision for every series it watches: :data:`ASSESSMENT_COLUMNS`, one row each.

        ``severity`` is the highest severity whose probability bar is met ("" when none: ``pages`` false);
        the probability and crossing times are those of that severity's line, or of the first level's
        when nothing fires. ``lines`` (per unique_id) replaces every level's threshold and recovery line
        (``intentvision capacity``: one threshold per series, judged by this rule's probability bars).
        ``hold_severity`` is the highest severity not yet past its recovery level ("" when recovered).
        """
        frame = self.matching(forecasts)
        if frame.empty:
            return pd.DataFrame(columns=ASSESSMENT_COLUMNS)
        above = self.direction == "above"
        last = last_actuals.drop_duplicates("unique_id", keep="last").set_index("unique_id")
        missing = sorted(set(frame["unique_id"]) - set(last.index))
        if missing:
            raise ValueError(f"rule {self.name!r}: no last actual point for series {', '.join(missing[:5])}")
        if self.horizon is not None:
            frame = frame[frame["ds"] <= frame["unique_id"].map(last["ds"]) + self.horizon]
        uids = pd.Index(sorted(set(frame["unique_id"])), name="unique_id")
        current = last["y"].reindex(uids).astype("float64")

        def past(line: pd.Series) -> pd.Series:
            return current >= line if above else current <= line

        def line_of(level: float) -> pd.Series:
            return lines.reindex(uids).astype("float64") if lines is not None else pd.Series(level, uids)

        outlooks, fires, holds = {}, {}, {}
        for severity, threshold in self.thresholds.items():
            line = line_of(threshold)
            outlook = breach_outlook(frame, line, above, past(line)).set_index("unique_id").reindex(uids)
            outlooks[severity] = outlook.assign(line=line)
            fires[severity] = outlook["probability"] >= self.min_probability[severity] - 1e-12
            recovery = line_of(self.recovery[severity])
            recovering = (
                outlook
                if recovery.equals(line)
                else breach_outlook(frame, recovery, above, past(recovery)).set_index("unique_id")
            )
            holds[severity] = fires[severity] | (
                recovering["probability"].reindex(uids) >= self.min_probability[severity] - 1e-12
            )
        severities = list(self.thresholds)
        fired = np.select([fires[s].to_numpy() for s in reversed(severities)], list(reversed(severities)), "")
        held = np.select([holds[s].to_numpy() for s in reversed(severities)], list(reversed(severities)), "")
        shown = np.where(fired == "", severities[0], fired)
        picked = pd.concat(outlooks, names=["severity"]).swaplevel().sort_index()
        figures = picked.loc[list(zip(uids, shown, strict=True))].reset_index(level="severity", drop=True)
        info = frame.drop_duplicates("unique_id").set_index("unique_id")
        return figures.assign(
            pages=fired != "",
            severity=fired,
            current=current,
            current_ds=last["ds"].reindex(uids),
            model=info["model"].reindex(uids).astype(str),
            hold_severity=held,
            horizon_end=frame.groupby("unique_id")["ds"].max().reindex(uids),
        ).reset_index()[ASSESSMENT_COLUMNS]

    def level_outlook(self, forecasts: pd.DataFrame, last_actuals: pd.DataFrame) -> pd.DataFrame:
        """Per series and severity level, what :meth:`assess` says of that level's line alone: the
        probability of reaching it within the horizon and the expected crossing. ``horizon`` is the window
        judged (from the last actual point to the last forecast step within the rule's horizon)."""
        uids = self.matching(forecasts)["unique_id"].unique()
        levels = []
        for severity, line in self.thresholds.items():
            assessed = self.assess(forecasts, last_actuals, lines=pd.Series(line, index=uids))
            levels.append(
                assessed.assign(
                    severity=severity,
                    horizon=pd.to_datetime(assessed["horizon_end"]) - pd.to_datetime(assessed["current_ds"]),
                )
            )
        return pd.concat(levels, ignore_index=True)[
            ["unique_id", "severity", "horizon", "probability", "crossing_ds"]
        ]

    @classmethod
    def message_fields(cls, details: Mapping[str, Any]) -> list[str]:
        """Breach probability, when (absolute and relative, with its interval), the value now, the model."""
        probability = details.get("probability")
        expected = details.get("expected_ds")
        window = details.get("horizon_hours")
        fields = [
            "*Breach probability*\n"
            + (f"{probability:.0%}" if probability is not None else "n/a")
            + (f" within {window:g} h" if window is not None else ""),
            "*Expected*\n"
            + (
                f"{utc_time(expected)} (in {details.get('expected_hours'):g} h)"
                if expected is not None
                else "after the horizon"
            ),
            f"*{details.get('interval_level')}% interval*\n"
            + " – ".join(
                f"{utc_time(ds)} (in {hours:g} h)" if ds is not None else "after the horizon"
                for ds, hours in (
                    (details.get("earliest_ds"), details.get("earliest_hours")),
                    (details.get("latest_ds"), details.get("latest_hours")),
                )
            ),
            f"*Now*\n{details.get('last_actual_y'):g} {details.get('unit', '')} "
            f"(threshold {details.get('threshold'):g})",
        ]
        accuracy = accuracy_text(details.get("accuracy") or {}, details.get("unit", ""))
        return [*fields, f"*Model*\n{details.get('model')}" + (f"; {accuracy}" if accuracy else "")]

    def plot_lines(self, metric: str, now: pd.Timestamp) -> tuple[ThresholdLine, ...]:
        """Every level's line, labelled with its severity (one line for severities sharing a level)."""
        if metric != self.metric:
            return ()
        levels: dict[float, list[str]] = {}
        for severity, value in self.thresholds.items():
            levels.setdefault(value, []).append(severity)
        return tuple(
            ThresholdLine(value, severities[-1], f"{'/'.join(severities)} {value:g}")
            for value, severities in levels.items()
        )

    def plot_crossings(self, forecasts: pd.DataFrame, last_actuals: pd.DataFrame) -> dict[str, Crossing]:
        """Where each series this rule pages on is expected to reach the line of the severity that fires; a
        series already past its line has no crossing ahead (the line and the actuals show it)."""
        assessed = self.assess(forecasts, last_actuals)
        past = (
            assessed["current"] >= assessed["line"]
            if self.direction == "above"
            else assessed["current"] <= assessed["line"]
        )
        paging = assessed[assessed["pages"] & assessed["crossing_ds"].notna() & ~past]
        return {
            row.unique_id: Crossing(
                ds=pd.Timestamp(row.crossing_ds),
                lo=pd.Timestamp(row.crossing_lo),
                hi=pd.Timestamp(row.crossing_hi),
                value=float(row.line),
                note=f"{row.severity} {row.line:g}: P {row.probability:.0%}",
            )
            for row in paging.itertuples(index=False)
        }


def _min_probability(where: str, value: Any) -> float | dict[str, float] | None:
    """None (not given), one probability in (0, 1], or a severity -> probability mapping."""
    if value is None:
        return None
    levels = config.levels(where, "min_probability", value) if isinstance(value, Mapping) else None
    for name, probability in (
        levels or {"min_probability": config.number(where, "min_probability", value)}
    ).items():
        if not 0 < probability <= 1:
            field_name = "min_probability" if levels is None else f"min_probability.{name}"
            raise ConfigError(
                f"{where}: field {field_name!r} is {probability:g}, expected a probability in (0, 1] "
                "such as 0.5"
            )
    return levels if levels is not None else float(value)


def _when(crossing: Any, now: pd.Timestamp, horizon: pd.Timedelta, prefix: str = "") -> str:
    """Time until a crossing, or "after <horizon>" when it does not happen within the forecast."""
    return f"after {duration(horizon)}" if pd.isna(crossing) else f"{prefix}{duration(crossing - now)}"


def _hours(value: Any, since: pd.Timestamp) -> float | None:
    return None if pd.isna(value) else round((pd.Timestamp(value) - since) / pd.Timedelta(hours=1), 2)


def accuracy_text(score: Mapping[str, Any], unit: str) -> str:
    """The backtest error in the metric's unit, recent windows first: what on-call can weigh a page by. An
    error of a percentage is in points ("±1.2 points"): "±1.2 %" would read as a relative error."""
    unit = "points" if unit == "%" else unit
    hours = score.get("backtest_hours")
    over = f" over {hours:g} h" if hours else ""
    recent, full = score.get("mae_recent"), score.get("mae")
    if recent is not None:
        text = f"typical error ±{quantity(recent, unit)}{over} (recent backtest window"
        return text + (f"; ±{quantity(full, unit)} over all windows)" if full is not None else ")")
    return f"typical error ±{quantity(full, unit)}{over} (backtest)" if full is not None else ""


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
    assessed = rule.assess(forecasts, last_actuals)
    active = assessed[assessed["pages"] | (assessed["hold_severity"] != "")]
    if active.empty:
        return []
    info = rule.matching(forecasts).drop_duplicates("unique_id").set_index("unique_id")
    scores = _accuracy_lookup(accuracy)
    verb = "cross" if rule.direction == "above" else "fall below"
    level = round(100 * (CROSSING_INTERVAL[1] - CROSSING_INTERVAL[0]))
    rows = []
    for row in active.itertuples(index=False):
        uid = row.unique_id
        severity = row.severity or row.hold_severity
        line = rule.thresholds[severity]
        threshold = quantity(line, unit)
        series = info.loc[uid]
        now_ds, y_now = pd.Timestamp(row.current_ds), float(row.current)
        horizon = pd.Timestamp(row.horizon_end) - now_ds
        score = scores.get((uid, row.model), {})
        error = accuracy_text(score, unit)
        model_text = f"model {row.model}" + (f", {error}" if error else "")
        display = display_name(series["metric"], series["labels"])
        crossing = {"earliest": row.crossing_lo, "expected": row.crossing_ds, "latest": row.crossing_hi}
        if not row.pages:
            recovery = quantity(rule.recovery[severity], unit)
            state = (
                f"is back on the safe side of {threshold} but not yet past its recovery level {recovery} "
                f"(now {number(y_now)})"
            )
        elif (y_now >= line) if rule.direction == "above" else (y_now <= line):
            state = f"is already {rule.direction} {threshold} (now {number(y_now)})"
        else:
            earliest, latest = (
                _when(value, now_ds, horizon) for value in (crossing["earliest"], crossing["latest"])
            )
            state = (
                f"expected to {verb} {threshold} {_when(crossing['expected'], now_ds, horizon, 'in ')} "
                f"({utc_time(crossing['expected'])}; {level}% interval {earliest} – {latest}), "
                f"probability {row.probability:.0%} within {duration(horizon)}; now {number(y_now)}"
            )
        details = {
            "kind": rule.kind,
            "threshold": line,
            "recovery": rule.recovery[severity],
            "unit": unit,
            "direction": rule.direction,
            "probability": round(float(row.probability), 4),
            "min_probability": rule.min_probability[severity],
            "interval_level": level,
            "last_actual_ds": json_safe(now_ds),
            "last_actual_y": y_now,
            "earliest_ds": json_safe(crossing["earliest"]),
            "expected_ds": json_safe(crossing["expected"]),
            "latest_ds": json_safe(crossing["latest"]),
            "earliest_hours": _hours(crossing["earliest"], now_ds),
            "expected_hours": _hours(crossing["expected"], now_ds),
            "latest_hours": _hours(crossing["latest"], now_ds),
            "horizon_end_ds": json_safe(row.horizon_end),
            "horizon_hours": _hours(row.horizon_end, now_ds),
            "model": row.model,
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
                "status": "firing" if row.pages else "holding",
                "hold_severity": row.hold_severity or None,
            }
        )
    return rows
