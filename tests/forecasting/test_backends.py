"""Backend contract: the same columns, ordering and bounds from statsforecast, Prophet and TimeGPT; TimeGPT
failures fall back to statsforecast with the reason recorded. TimeGPT is the real nixtla client talking HTTP
to a loopback stand-in."""

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.forecasting.backends import BackendRun, TimeGPTOptions, run_backend
from intentvision_dagster.forecasting.spec import ForecastSpec
from tests.forecasting.factories import long_frame, seasonal_frame
from tests.support.timegpt_standin import TimeGPTStandIn

COLUMNS = ["unique_id", "ds", "yhat", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
KEY = "nixak-test-key"


def history() -> pd.DataFrame:
    """Two CPU-like series near 100% (bounds matter) and one too short for Prophet/TimeGPT."""
    frame = seasonal_frame(n_series=2, days=8)
    frame["y"] = np.minimum(100, frame["y"] + 50)
    return pd.concat([frame, long_frame([5.0, 6.0, 7.0], "short")], ignore_index=True)


def assert_contract(run: BackendRun, model: str) -> None:
    fc = run.forecasts
    assert list(fc.columns) == COLUMNS
    assert fc.groupby("unique_id").size().to_dict() == {uid: 12 for uid in history()["unique_id"].unique()}
    assert (fc["lo_95"] <= fc["lo_80"]).all() and (fc["lo_80"] <= fc["yhat"]).all()
    assert (fc["yhat"] <= fc["hi_80"]).all() and (fc["hi_80"] <= fc["hi_95"]).all()
    assert fc[COLUMNS[2:7]].max().max() <= 100 and fc[COLUMNS[2:7]].min().min() >= 0
    long_series = fc[fc["unique_id"] != "acme/short"]
    assert set(long_series["model"]) == {model}
    assert set(fc.loc[fc["unique_id"] == "acme/short", "model"]) == {"Naive"}


def options(api: TimeGPTStandIn, **overrides) -> TimeGPTOptions:
    settings = {"timeout_seconds": 1, "max_retries": 1, "retry_interval_seconds": 0, "max_wait_seconds": 5}
    return TimeGPTOptions(api_key=KEY, base_url=api.url, **(settings | overrides))


def run_timegpt(timegpt: TimeGPTOptions) -> BackendRun:
    return run_backend(
        history(), ForecastSpec(12, "h", lower=0, upper=100), backend="timegpt", timegpt=timegpt
    )


def test_timegpt_forecasts_through_the_nixtla_client() -> None:
    with TimeGPTStandIn(api_key=KEY) as api:
        run = run_timegpt(options(api))
        paths = [(r.method, r.path, r.status) for r in api.requests]
    assert run.backend == "timegpt" and run.fallback_reason is None
    assert_contract(run, "TimeGPT")
    assert paths == [("GET", "/model_params", 200), ("POST", "/v2/forecast", 200)]
    last = history().groupby("unique_id")["y"].last()
    web0 = run.forecasts[run.forecasts["unique_id"] == 'acme/node_cpu_utilization_percent{host="web-0"}']
    assert web0["yhat"].to_numpy() == pytest.approx(last['acme/node_cpu_utilization_percent{host="web-0"}'])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (("401",), "TimeGPT rejected the API key (HTTP 401)"),
        (("429", 1), "TimeGPT rate limit (HTTP 429) after the client's retries"),
        (("500",), "TimeGPT server error (HTTP 500)"),
        (("502",), "TimeGPT server error (HTTP 502)"),
        (("503",), "TimeGPT server error (HTTP 503)"),
        (("hang", 2.5), "TimeGPT timed out (ReadTimeout)"),
    ],
)
def test_every_timegpt_failure_falls_back_to_statsforecast_with_the_reason(fault, reason) -> None:
    with TimeGPTStandIn(api_key=KEY) as api:
        api.fail_next(("hang", 0.0), fault)  # the first request (model_params) succeeds, the forecast fails
        run = run_timegpt(options(api))
    assert run.backend == "statsforecast"
    assert run.fallback_reason == reason
    assert set(run.forecasts["model"]) <= {"MSTL", "SeasonalNaive", "Ensemble", "Naive"}
    assert run.forecasts.groupby("unique_id").size().eq(12).all()


def test_a_wrong_api_key_and_an_unreachable_api_fall_back_too() -> None:
    with TimeGPTStandIn(api_key="the-right-key") as api:
        wrong_key = run_timegpt(options(api))
        url = api.url
    assert wrong_key.fallback_reason == "TimeGPT rejected the API key (HTTP 401)"
    unreachable = run_timegpt(TimeGPTOptions(api_key=KEY, base_url=url, timeout_seconds=1, max_retries=1))
    assert unreachable.backend == "statsforecast"
    assert unreachable.fallback_reason.startswith("TimeGPT unreachable (ConnectError")


def test_a_retried_rate_limit_then_success_keeps_timegpt() -> None:
    with TimeGPTStandIn(api_key=KEY) as api:
        api.fail_next(("hang", 0.0), ("429", 0))
        run = run_timegpt(options(api, max_retries=2))
        statuses = [r.status for r in api.requests]
    assert run.backend == "timegpt" and run.fallback_reason is None
    assert statuses == [200, 429, 200]


def test_prophet_backend_contract_with_country_holidays() -> None:
    run = run_backend(
        history(), ForecastSpec(12, "h", lower=0, upper=100), backend="prophet", holidays_country="US"
    )
    assert run.backend == "prophet" and run.fallback_reason is None
    assert_contract(run, "Prophet")


def test_unknown_backend_and_timegpt_without_key_are_refused() -> None:
    with pytest.raises(ValueError, match="forecast backend 'arima' is not one of"):
        run_backend(history(), ForecastSpec(3, "h"), backend="arima")
    with pytest.raises(ValueError, match="NIXTLA_API_KEY"):
        run_backend(history(), ForecastSpec(3, "h"), backend="timegpt")
