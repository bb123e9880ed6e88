"""Anomaly rules: fire once per anomaly event (or episode) whose worst point reaches a severity."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.inputs import (
    RuleInputs,
    display_name,
    duration,
    json_safe,
    number,
    utc_time,
)
from intentvision_dagster.alerting.kinds.base import Rule
from intentvision_dagster.severity import SEVERITY_RANK

ALL_METRICS = "*"
DEFAULT_ANOMALY_LOOKBACK = pd.Timedelta(days=4)


@dataclass(frozen=True, kw_only=True)
class AnomalyRule(Rule):
    """Fire once per anomaly event whose worst point reaches ``min_severity``.

    Only events that began within ``lookback`` of the series' newest point count: a first backfill of a month
    of history should not page anyone about last month's incidents.
    """

    kind: ClassVar[str] = "anomaly"
    yaml_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "type",
        "metric",
        "min_severity",
        "min_points",
        "window_points",
        "lookback",
        "labels",
        "description",
    )
    asset: ClassVar[str] = "anomalies"
    name: str
    metric: str | None = None
    min_severity: str = "warning"
    min_points: int = 1
    window_points: int = 1
    lookback: pd.Timedelta = field(default_factory=lambda: DEFAULT_ANOMALY_LOOKBACK)
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_entry(cls, where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> Self:
        metric = entry.get("metric", ALL_METRICS)
        min_points = config.count(where, "min_points", entry.get("min_points", 1))
        window_points = config.count(where, "window_points", entry.get("window_points", min_points))
        if window_points < min_points:
            raise ConfigError(
                f"{where}: field 'window_points' is {window_points}, "
                f"expected at least min_points ({min_points})"
            )
        return cls(
            **common,
            metric=None if metric in (None, ALL_METRICS) else config.metric(where, metric),
            min_severity=config.one_of(
                where, "min_severity", entry.get("min_severity", "warning"), config.ANOMALY_SEVERITIES
            ),
            min_points=min_points,
            window_points=window_points,
            lookback=config.duration(where, "lookback", entry.get("lookback", DEFAULT_ANOMALY_LOOKBACK)),
        )

    def evaluate(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        if self.min_points > 1 or self.window_points > 1:
            return _anomaly_episodes(self, inputs.anomalies)
        return _anomaly_events(self, inputs.anomalies)


def _anomaly_events(rule: AnomalyRule, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    """One candidate per detector event whose worst point reaches the rule's severity."""
    frame = rule.matching(anomalies)
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
        key = f"{tenant}:{rule.name}:{event_id}"
        rows.append(_anomaly_row(rule, tenant, uid, event, key, ongoing, newest[uid]))
    return rows


def _anomaly_episodes(rule: AnomalyRule, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    """One candidate per episode of "severity >= S on at least N of the last M points".

    An episode is a run of consecutive points at which the condition holds; its onset names it (dedup key).
    """
    frame = rule.matching(anomalies)
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
        rows.append(_anomaly_row(rule, tenant, uid, flagged, key, ongoing, newest[uid]))
    return rows


def _anomaly_row(
    rule: AnomalyRule,
    tenant: str,
    uid: str,
    event: pd.DataFrame,
    dedup_key: str,
    ongoing: bool,
    newest: pd.Timestamp,
) -> dict[str, Any]:
    """The alert of one event; its times are absolute (UTC) and relative to the series' newest point."""
    worst = event.loc[event["_rank"].idxmax()]
    onset = event.iloc[0]
    peak = event.loc[event["anomaly_score"].abs().idxmax()]
    display = display_name(onset["metric"], onset["labels"])
    last_ds = event["ds"].iloc[-1]
    details = {
        "kind": rule.kind,
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
        "newest_ds": json_safe(newest),
        "description": rule.description,
    }
    ended = "" if ongoing else f", ended {utc_time(last_ds)} ({_ago(last_ds, newest)})"
    # The onset says what began; when the event became critical later, that point's reason says why.
    why = f"; critical at {worst['ds']:%H:%M}: {worst['reason']}" if _escalated(onset, worst) else ""
    return {
        "tenant": tenant,
        "metric": onset["metric"],
        "series": uid,
        "labels": onset["labels"],
        "rule": rule.name,
        "severity": worst["severity"],
        "dedup_key": dedup_key,
        "summary": (
            f"{display}: {worst['severity']} anomaly since {utc_time(onset['ds'])} "
            f"({_ago(onset['ds'], newest)}){ended} "
            f"({len(event)} points, peak score {number(float(peak['anomaly_score']))}): "
            f"{onset['reason']}{why}"
        ),
        "details": json.dumps(details),
        "status": "firing" if ongoing else "ended",
        "hold_severity": None,
    }


def _ago(moment: pd.Timestamp, newest: pd.Timestamp) -> str:
    """How long before the series' newest point: "5 h ago", or "at the newest point"."""
    return "at the newest point" if moment >= newest else f"{duration(newest - moment)} ago"


def _escalated(onset: pd.Series, worst: pd.Series) -> bool:
    """The event reached critical after its onset (so the onset's reason does not say why it is critical)."""
    return worst["severity"] == "critical" and onset["severity"] != "critical" and bool(worst["reason"])
