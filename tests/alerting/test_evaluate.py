import json

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS, evaluate
from intentvision_dagster.alerting.kinds import AnomalyRule, BudgetRule, ForecastBreachRule

NOW = pd.Timestamp("2026-01-05 00:00")
DISK = "node_filesystem_usage_percent"
DISK_RULE = ForecastBreachRule(name="disk-capacity", metric=DISK, threshold=90, severity="critical")
UNITS = {DISK: "%"}


def forecast(
    tenant: str = "acme",
    labels: str = 'host="db-1",mountpoint="/data"',
    start: float = 78.0,
    slope: float = 0.25,
    half_width: float = 4.0,
    metric: str = DISK,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """72 hourly forecast points after NOW and the last actual at NOW; binary fractions, so no rounding."""
    uid = f"{tenant}/{metric}{{{labels}}}"
    hours = np.arange(1, 73)
    yhat = start + slope * hours
    frame = pd.DataFrame(
        {
            "tenant": tenant,
            "metric": metric,
            "labels": labels,
            "unique_id": uid,
            "ds": NOW + pd.to_timedelta(hours, unit="h"),
            "yhat": yhat,
            "lo_80": yhat - half_width / 2,
            "hi_80": yhat + half_width / 2,
            "lo_95": yhat - half_width,
            "hi_95": yhat + half_width,
            "model": "MSTL",
        }
    )
    return frame, pd.DataFrame({"unique_id": [uid], "ds": [NOW], "y": [start]})


def accuracy_for(uid: str) -> pd.DataFrame:
    row = {"unique_id": uid, "model": "MSTL", "mae": 1.0, "rmse": 1.5, "mape": 0.02, "smape": 0.02}
    return pd.DataFrame([{**row, "mase": 0.71, "coverage_80": 0.8, "coverage_95": 0.94}])


def test_breach_reports_probability_crossing_time_and_its_interval() -> None:
    frame, last = (
        forecast()
    )  # yhat = 78 + 0.25 h: the median crosses 90 at 48 h, hi_80 at 40 h, lo_80 at 56 h
    uid = frame["unique_id"][0]
    candidates = evaluate([DISK_RULE], frame, last, pd.DataFrame(), accuracy_for(uid), units=UNITS)
    assert list(candidates.columns) == CANDIDATE_COLUMNS
    assert len(candidates) == 1
    alert = candidates.iloc[0]
    assert (alert["tenant"], alert["metric"], alert["series"], alert["rule"], alert["severity"]) == (
        "acme",
        DISK,
        uid,
        "disk-capacity",
        "critical",
    )
    assert alert["summary"] == (
        'node_filesystem_usage_percent{host="db-1",mountpoint="/data"} expected to cross 90 % in 48 h '
        "(2026-01-07 00:00 UTC; 80% interval 40 h – 56 h), probability 100% within 72 h; now 78; "
        "model MSTL, typical error ±1 points (backtest)"
    )
    assert "MASE" not in alert["summary"]
    assert alert["dedup_key"] == f"acme:disk-capacity:{uid}:2026-01-05T00:00:00"
    details = json.loads(alert["details"])
    assert (details["earliest_hours"], details["expected_hours"], details["latest_hours"]) == (40, 48, 56)
    assert details["expected_ds"] == "2026-01-07T00:00:00"
    assert details["probability"] == pytest.approx(0.996, abs=0.001)
    assert details["min_probability"] == 0.8
    assert details["accuracy"]["mae"] == 1.0


def test_same_forecast_twice_gives_same_candidates() -> None:
    frame, last = forecast()
    first = evaluate([DISK_RULE], frame, last, pd.DataFrame())
    again = evaluate([DISK_RULE], frame.sample(frac=1, random_state=1), last, pd.DataFrame())
    pd.testing.assert_frame_equal(first, again)


def test_a_band_edge_touching_the_line_is_not_enough_to_page() -> None:
    frame, last = forecast(start=85.0, slope=0.0, half_width=20.0)  # hi_80 = 95, hi_95 = 105
    last["y"] = 78.0  # P(>= 90) = 26 % at every step
    assert evaluate([DISK_RULE], frame, last, pd.DataFrame(), units=UNITS).empty
    legacy = ForecastBreachRule(name="disk-edge", metric=DISK, threshold=90, edge="hi_95")
    (summary,) = evaluate([legacy], frame, last, pd.DataFrame(), units=UNITS)["summary"]
    assert "probability 26% within 72 h; now 78; model MSTL" in summary
    assert "backtest" not in summary  # no accuracy frame given


def test_no_candidate_when_the_edge_stays_below_threshold() -> None:
    frame, last = forecast(start=50.0, slope=0.1)
    assert evaluate([DISK_RULE], frame, last, pd.DataFrame()).empty


def test_min_probability_or_its_edge_shorthand_decides_whether_it_fires() -> None:
    frame, last = forecast(start=78.0, slope=0.1)  # yhat peaks at 85.2, hi_95 at 89.2 -> neither reaches 90
    frame["hi_95"] += 1.0  # hi_95 now reaches 90 at the last point: P = 2.5 % there
    edge_rule = ForecastBreachRule(name="disk-edge", metric=DISK, threshold=90, edge="hi_95")
    median_rule = ForecastBreachRule(name="disk-median", metric=DISK, threshold=90, edge="yhat")
    low_bar = ForecastBreachRule(name="disk-low-bar", metric=DISK, threshold=90, min_probability=0.02)
    candidates = evaluate([DISK_RULE, edge_rule, median_rule, low_bar], frame, last, pd.DataFrame())
    assert list(candidates["rule"]) == ["disk-edge", "disk-low-bar"]
    assert (edge_rule.min_probability, median_rule.min_probability) == ({"warning": 0.025}, {"warning": 0.5})


def test_label_matchers_select_series() -> None:
    db, db_last = forecast(labels='host="db-1",mountpoint="/data"')
    web, web_last = forecast(labels='host="web-1",mountpoint="/"')
    rule = ForecastBreachRule(name="db-disk", metric=DISK, threshold=90, labels={"host": "db-1"})
    candidates = evaluate([rule], pd.concat([db, web]), pd.concat([db_last, web_last]), pd.DataFrame())
    assert list(candidates["series"]) == [db["unique_id"][0]]
    assert list(candidates["labels"]) == ['host="db-1",mountpoint="/data"']


def test_other_metrics_are_ignored() -> None:
    frame, last = forecast(metric="node_cpu_utilization_percent")
    assert evaluate([DISK_RULE], frame, last, pd.DataFrame()).empty


def test_direction_below_uses_lower_bound() -> None:
    frame, last = forecast(start=20.0, slope=-0.25)
    rule = ForecastBreachRule(name="low-rps", metric=DISK, threshold=10, direction="below", edge="lo_95")
    assert rule.min_probability == {"warning": 0.025}  # lo_95 touching the line, for a falling series
    (summary,) = evaluate([rule], frame, last, pd.DataFrame())["summary"]
    assert "expected to fall below 10 in 40 h (2026-01-06 16:00 UTC; 80% interval 32 h – 48 h)" in summary


def test_series_already_in_breach_says_so() -> None:
    frame, last = forecast(start=93.0, slope=0.0)
    (summary,) = evaluate([DISK_RULE], frame, last, pd.DataFrame(), units=UNITS)["summary"]
    assert summary.startswith(
        'node_filesystem_usage_percent{host="db-1",mountpoint="/data"} is already above 90 % '
    )
    assert "(now 93)" in summary


def test_tenants_are_never_mixed() -> None:
    acme, acme_last = forecast(tenant="acme")
    globex, globex_last = forecast(tenant="globex", start=50.0, slope=0.0)
    both = pd.concat([acme, globex])
    candidates = evaluate([DISK_RULE], both, pd.concat([acme_last, globex_last]), pd.DataFrame())
    assert list(candidates["tenant"]) == ["acme"]
    assert candidates["series"].str.startswith("acme/").all()
    assert candidates["dedup_key"].str.startswith("acme:").all()


def test_missing_last_actual_is_an_error() -> None:
    frame, _ = forecast()
    with pytest.raises(ValueError, match="no last actual point for series acme/node_filesystem"):
        evaluate([DISK_RULE], frame, pd.DataFrame({"unique_id": [], "ds": [], "y": []}), pd.DataFrame())


ANOMALY_INPUT_COLUMNS = [
    *("tenant", "metric", "labels", "hour", "y", "expected", "anomaly_score"),
    *("is_anomaly", "severity", "event_id", "reason"),
]


def anomalies() -> pd.DataFrame:
    """Two events on web-1 (one reaches critical, one only info) and one warning event on db-1's memory."""
    cpu, mem = "node_cpu_utilization_percent", "container_memory_working_set_bytes"
    rows = [
        # tenant, metric, labels, hour, y, expected, score, is_anomaly, severity, event_id, reason
        ("acme", cpu, 'host="web-1"', 0, 40.0, 41.0, 0.2, False, "none", None, ""),
        ("acme", cpu, 'host="web-1"', 1, 90.0, 40.0, 4.1, True, "warning", "ev-1", "y=90 above expected 40"),
        ("acme", cpu, 'host="web-1"', 2, 97.0, 40.0, 6.3, True, "critical", "ev-1", "y=97 above expected 40"),
        ("acme", cpu, 'host="web-1"', 3, 85.0, 40.0, 3.9, True, "warning", "ev-1", "y=85 above expected 40"),
        ("acme", cpu, 'host="web-1"', 9, 60.0, 40.0, 2.1, True, "info", "ev-2", "y=60 above expected 40"),
        (
            "globex",
            mem,
            'pod="api-1"',
            5,
            4.0e9,
            2.0e9,
            4.5,
            True,
            "warning",
            "ev-3",
            "y=4G above expected 2G",
        ),
    ]
    frame = pd.DataFrame(
        rows,
        columns=ANOMALY_INPUT_COLUMNS,
    )
    frame["unique_id"] = frame["tenant"] + "/" + frame["metric"] + "{" + frame["labels"] + "}"
    frame["ds"] = NOW + pd.to_timedelta(frame.pop("hour"), unit="h")
    return frame.assign(detector="robust_zscore")


def test_one_candidate_per_anomaly_event_with_onset_reason_and_why_it_is_critical() -> None:
    rule = AnomalyRule(name="anomalies", min_severity="warning")
    candidates = evaluate([rule], pd.DataFrame(), pd.DataFrame(), anomalies())
    assert list(candidates["dedup_key"]) == ["acme:anomalies:ev-1", "globex:anomalies:ev-3"]
    first = candidates.iloc[0]
    assert (first["tenant"], first["severity"], first["series"]) == (
        "acme",
        "critical",
        'acme/node_cpu_utilization_percent{host="web-1"}',
    )
    assert first["summary"] == (
        'node_cpu_utilization_percent{host="web-1"}: critical anomaly since 2026-01-05 01:00 UTC (8 h ago), '
        "ended 2026-01-05 03:00 UTC (6 h ago) (3 points, peak score 6.3): y=90 above expected 40; "
        "critical at 02:00: y=97 above expected 40"
    )
    assert first["status"] == "ended", "web-1's newest point (hour 9) is after the event"
    details = json.loads(first["details"])
    assert (details["points"], details["peak_y"], details["onset_ds"]) == (3, 97.0, "2026-01-05T01:00:00")
    assert candidates.iloc[1]["tenant"] == "globex"


def test_min_severity_and_metric_filter_events() -> None:
    everything = evaluate(
        [AnomalyRule(name="all", min_severity="info")], pd.DataFrame(), pd.DataFrame(), anomalies()
    )
    assert sorted(everything["dedup_key"]) == ["acme:all:ev-1", "acme:all:ev-2", "globex:all:ev-3"]
    critical = AnomalyRule(name="crit", metric="node_cpu_utilization_percent", min_severity="critical")
    assert list(evaluate([critical], pd.DataFrame(), pd.DataFrame(), anomalies())["dedup_key"]) == [
        "acme:crit:ev-1"
    ]


def test_empty_inputs_give_an_empty_frame_with_columns() -> None:
    rules = [DISK_RULE, AnomalyRule(name="anomalies")]
    candidates = evaluate(rules, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    assert candidates.empty and list(candidates.columns) == CANDIDATE_COLUMNS


def test_anomaly_events_older_than_the_lookback_do_not_alert() -> None:
    """web-1's newest point is hour 9: with a 7 h lookback only ev-2 (onset hour 9) is recent enough."""
    rule = AnomalyRule(name="recent", min_severity="info", lookback=pd.Timedelta(hours=7))
    candidates = evaluate([rule], pd.DataFrame(), pd.DataFrame(), anomalies())
    assert sorted(candidates["dedup_key"]) == ["acme:recent:ev-2", "globex:recent:ev-3"]


LEVELS_RULE = ForecastBreachRule(
    name="disk-levels",
    metric=DISK,
    thresholds={"warning": 85, "critical": 90},
    recovery={"warning": 80, "critical": 87},
)


def test_the_highest_likely_level_fires_with_its_own_line() -> None:
    frame, last = forecast()  # yhat = 78 + 0.25 h: 85 at 28 h, 90 at 48 h
    (row,) = evaluate([LEVELS_RULE], frame, last, pd.DataFrame(), units=UNITS).to_dict("records")
    assert (row["severity"], row["status"], row["hold_severity"]) == ("critical", "firing", "critical")
    assert "expected to cross 90 % in 48 h" in row["summary"]
    short = ForecastBreachRule(
        name="soon", metric=DISK, thresholds={"warning": 85, "critical": 90}, horizon=pd.Timedelta(hours=36)
    )
    (row,) = evaluate([short], frame, last, pd.DataFrame(), units=UNITS).to_dict("records")
    assert row["severity"] == "warning", "within 36 h only the 85 % line is likely reached"
    assert "expected to cross 85 % in 28 h" in row["summary"]


def test_one_line_with_probability_levels_gives_the_severity() -> None:
    rule = ForecastBreachRule(
        name="disk", metric=DISK, threshold=90, min_probability={"warning": 0.2, "critical": 0.9}
    )
    assert rule.thresholds == {"warning": 90.0, "critical": 90.0}
    frame, last = forecast(start=85.0, slope=0.0, half_width=20.0)  # P(>= 90) = 26 %: a warning only
    assert list(evaluate([rule], frame, last, pd.DataFrame())["severity"]) == ["warning"]
    frame, last = forecast()  # P = 99.6 %
    assert list(evaluate([rule], frame, last, pd.DataFrame())["severity"]) == ["critical"]


def test_between_threshold_and_recovery_the_series_holds() -> None:
    frame, last = forecast(start=88.0, slope=0.0, half_width=4.0)  # P(>= 85) 98 %, P(>= 90) 10 %
    (row,) = evaluate([LEVELS_RULE], frame, last, pd.DataFrame(), units=UNITS).to_dict("records")
    assert (row["severity"], row["status"], row["hold_severity"]) == ("warning", "firing", "critical")
    frame, last = forecast(start=82.0, slope=0.0, half_width=4.0)  # unlikely past 85, but now above 80
    (row,) = evaluate([LEVELS_RULE], frame, last, pd.DataFrame(), units=UNITS).to_dict("records")
    assert (row["status"], row["hold_severity"]) == ("holding", "warning")
    assert "not yet past its recovery level 80 %" in row["summary"]
    frame, last = forecast(start=70.0, slope=0.0, half_width=4.0)
    assert evaluate([LEVELS_RULE], frame, last, pd.DataFrame()).empty


def anomaly_series(flags: list[str]) -> pd.DataFrame:
    """One hourly series whose points have these severities ('none' = not anomalous)."""
    hours = range(len(flags))
    return pd.DataFrame(
        {
            "tenant": "acme",
            "metric": "http_requests_per_second",
            "labels": 'endpoint="/pay"',
            "unique_id": 'acme/http_requests_per_second{endpoint="/pay"}',
            "ds": [NOW + pd.Timedelta(hours=h) for h in hours],
            "y": [100.0 + 50 * (flag != "none") for flag in flags],
            "expected": 100.0,
            "anomaly_score": [6.0 * (flag != "none") for flag in flags],
            "is_anomaly": [flag != "none" for flag in flags],
            "severity": flags,
            "event_id": [f"ev-{h}" if flag != "none" else None for h, flag in zip(hours, flags, strict=True)],
            "reason": "y above expected",
            "detector": "seasonal_mad",
        }
    )


def test_n_of_m_fires_per_episode_and_says_whether_it_is_over() -> None:
    rule = AnomalyRule(name="sustained", min_severity="warning", min_points=2, window_points=3)
    flags = ["none", "warning", "none", "critical", "none", "none", "none", "warning", "info", "none"]
    (row,) = evaluate([rule], pd.DataFrame(), pd.DataFrame(), anomaly_series(flags)).to_dict("records")
    assert (
        row["dedup_key"]
        == 'acme:sustained:acme/http_requests_per_second{endpoint="/pay"}:2026-01-05T03:00:00'
    )
    assert (row["severity"], row["status"]) == ("critical", "ended")
    assert json.loads(row["details"])["points"] == 2, "the two flagged points behind the episode"
    ongoing = [*flags[:-2], "warning", "warning"]
    rows = evaluate([rule], pd.DataFrame(), pd.DataFrame(), anomaly_series(ongoing))
    assert list(rows["status"]) == ["ended", "firing"]


def test_budget_sums_series_and_forecast_to_month_end() -> None:
    days = pd.date_range("2026-01-20", periods=7, freq="D")
    forecasts = pd.concat(
        pd.DataFrame(
            {
                "tenant": "acme",
                "metric": "cloud_cost_usd_daily",
                "labels": f'service="{service}"',
                "unique_id": f'acme/cloud_cost_usd_daily{{service="{service}"}}',
                "ds": days,
                "yhat": cost,
                "lo_80": cost * 0.9,
                "hi_80": cost * 1.1,
                "lo_95": cost * 0.8,
                "hi_95": cost * 1.2,
                "model": "MSTL",
            }
        )
        for service, cost in (("compute", 400.0), ("storage", 100.0))
    )
    actuals = pd.DataFrame(
        {
            "unique_id": 'acme/cloud_cost_usd_daily{service="compute"}',
            "ds": pd.date_range("2026-01-01", periods=19, freq="D"),
            "y": 500.0,
        }
    )
    rule = BudgetRule(name="budget", metric="cloud_cost_usd_daily", budget=15000)
    # spent 19 x 500 = 9500; forecast 20-26 Jan 7 x 500 = 3500 (13000 by the 26th); 27-31 Jan carried: 2500
    (row,) = evaluate([rule], forecasts, pd.DataFrame(), pd.DataFrame(), actuals=actuals).to_dict("records")
    details = json.loads(row["details"])
    assert (details["spent"], details["projected"], details["crossing_ds"]) == (
        9500.0,
        15500.0,
        "2026-01-30T00:00:00",
    )
    assert row["dedup_key"] == "acme:budget:2026-01" and row["series"] == "acme/cloud_cost_usd_daily"
    assert "carried forward" in row["summary"] and "by 2026-01-31" in row["summary"]
    assert evaluate(
        [BudgetRule(name="b", metric="cloud_cost_usd_daily", budget=16000)],
        forecasts,
        pd.DataFrame(),
        pd.DataFrame(),
        actuals=actuals,
    ).empty
