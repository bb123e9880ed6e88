"""``forecast_accuracy`` (model selection), then ``forecasts`` with their plots."""

import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.catalog import MetricCatalog, MetricSpec
from intentvision_dagster.chart_marks import Crossing, SeriesMarks
from intentvision_dagster.forecasting.backends import run_backend
from intentvision_dagster.forecasting.cleaning import without_anomalies
from intentvision_dagster.forecasting.gaps import fill_missing_steps
from intentvision_dagster.forecasting.limits import (
    LimitExceeded,
    TenantBudget,
    grid_points,
    modelling_step,
    recent_history,
)
from intentvision_dagster.forecasting.models import MODEL_LOW_CONFIDENCE
from intentvision_dagster.forecasting.plots import MAX_PANELS, forecast_plot_png, pick_series
from intentvision_dagster.forecasting.regimes import current_regime
from intentvision_dagster.forecasting.resources import ForecastingConfig
from intentvision_dagster.forecasting.selection import select_models, selection_columns
from intentvision_dagster.forecasting.spec import ForecastSpec, empty_forecast
from intentvision_dagster.forecasting.workers import worker_pool
from intentvision_dagster.frequency import horizon_steps, sampling_freq, season_lengths
from intentvision_dagster.isolation import each_partition
from intentvision_dagster.names import partition_key
from intentvision_dagster.partitions import keep_failed_partitions, series_asset, stored_rows
from intentvision_dagster.plotting import png_markdown
from intentvision_dagster.resources import BreachThresholds, ProjectConfig, PrometheusExport

IDENTITY = ["unique_id", "tenant", "metric", "labels"]
LEVELS = (80, 95)


def partition_spec(
    key: str, rows: pd.DataFrame, entry: MetricSpec, config: ForecastingConfig, n_jobs: int
) -> tuple[pd.DataFrame, ForecastSpec] | None:
    """One partition's regular-step frame and the engine's spec (one vectorised engine call per partition);
    None while the partition is warming up (no series has two timestamps yet, so there is no step).

    The step and history are bounded by the metric's catalog limits and the partition's size by
    ``max_partition_points`` (:mod:`~intentvision_dagster.forecasting.limits`); missing steps are then
    filled by metric kind (:mod:`~intentvision_dagster.forecasting.gaps`) and each history is cut or levelled
    to its current regime (:mod:`~intentvision_dagster.forecasting.regimes`).
    """
    freq = sampling_freq(rows)
    if freq is None:
        return None
    step = modelling_step(freq, entry.horizon, entry.min_step, entry.max_horizon_steps)
    rows = recent_history(rows, step, entry.max_history_points)
    points = grid_points(rows, step)
    if points > config.max_partition_points:
        raise LimitExceeded(
            f"{key}: {points} grid points at step {step} (above max_partition_points "
            f"{config.max_partition_points}); raise the metric's min_step or lower max_history_points"
        )
    spec = ForecastSpec(
        horizon=horizon_steps(entry.horizon, step),
        freq=step,
        levels=LEVELS,
        lower=entry.min_value,
        upper=entry.max_value,
        n_jobs=n_jobs,
        metric=config.selection_metric,
        n_windows=config.backtest_windows,
    )
    regular = fill_missing_steps(rows, step, entry.kind).drop(columns="filled")
    return current_regime(regular, season_lengths(step)), spec


def prepared_partition(
    tenant: str,
    metric: str,
    rows: pd.DataFrame,
    catalog: MetricCatalog,
    config: ForecastingConfig,
    n_jobs: int,
    budget: TenantBudget,
) -> tuple[pd.DataFrame, ForecastSpec] | None:
    """:func:`partition_spec` for a partition with rows, its grid points charged to the tenant's budget."""
    if rows.empty:
        return None
    key = partition_key(tenant, metric)
    prepared = partition_spec(key, rows, catalog.spec(metric), config, n_jobs)
    if prepared is not None:
        budget.charge(tenant, key, len(prepared[0]))
    return prepared


def previous_selection(warehouse: DuckDBResource, keys: list[str]) -> pd.DataFrame:
    """The stored ``forecast_accuracy`` rows of these partitions (empty before the first selection)."""
    with warehouse.get_connection() as conn:
        previous = stored_rows(conn, "forecast_accuracy", keys)
    if "selected_at" not in previous.columns:
        return pd.DataFrame()
    # Rows an older version wrote carry no selection (NULL selected_at): those series are selected again.
    return previous[previous["selected_at"].notna()].astype({"low_confidence": bool})


@series_asset(
    kinds={"duckdb", "statsforecast", "utilsforecast"},
)
def forecast_accuracy(
    context: dg.AssetExecutionContext,
    anomalies: pd.DataFrame,
    project: ProjectConfig,
    forecasting: ForecastingConfig,
    warehouse: DuckDBResource,
) -> pd.DataFrame:
    """Model selection per series by rolling-origin backtest, with each candidate's scores and the interval
    calibration the forecasts apply.

    A series keeps its stored selection while it is younger than ``reselect_days`` (7 by default) and was
    made with the configured metric; new series, cold-start (low-confidence) series and stale selections are
    backtested again, so the nightly run refits models but re-selects only about a seventh of the series.
    Partitions whose series have one timestamp each are warming up (listed in the metadata, nothing
    selected yet); a partition the backtest fails on keeps its previous selection and is reported.
    """
    config = forecasting.validated()
    catalog = project.catalog()
    # The modelled series (a counter's increase), as the forecasts see it, with its anomalies left in.
    modelled = anomalies[[*IDENTITY, "ds", "y"]]
    identity = modelled[IDENTITY].drop_duplicates("unique_id")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    stored = previous_selection(warehouse, context.partition_keys)
    if not stored.empty:
        # Cold-start selections are redone nightly: their history grows into a richer tier within days.
        stored = stored[
            (stored["selected_at"] >= now - pd.Timedelta(days=config.reselect_days))
            & (stored["selection_metric"] == config.selection_metric)
            & ~stored["low_confidence"]
        ]
    started = time.perf_counter()
    waiting: list[str] = []
    budget = TenantBudget(config.tenant_points_per_run)

    def select(tenant: str, metric: str, rows: pd.DataFrame) -> pd.DataFrame | None:
        prepared = prepared_partition(tenant, metric, rows, catalog, config, project.model_jobs, budget)
        if prepared is None:
            if len(rows):  # rows, but no step yet: warming up
                waiting.append(partition_key(tenant, metric))
            return None
        frame, spec = prepared
        kept = stored[stored["unique_id"].isin(frame["unique_id"])] if not stored.empty else stored
        todo = frame[~frame["unique_id"].isin(kept["unique_id"])] if not kept.empty else frame
        parts = [kept.drop(columns=[c for c in IDENTITY if c != "unique_id"])] if not kept.empty else []
        if not todo.empty:
            parts.append(select_models(todo, spec).assign(selected_at=now))
        return pd.concat(parts, ignore_index=True)

    # One pool (or Dask client) for the step's partitions, gone when the step ends.
    with worker_pool(project.dask_address, project.dask_retries):
        done = each_partition(context.partition_keys, modelled, select)
    previous, skipped = keep_failed_partitions(context, done.failed, len(done.results), warehouse)
    columns = [*selection_columns(LEVELS), "selected_at"]
    if done.results:
        result = pd.concat(done.results.values(), ignore_index=True)[columns]
        result = pd.concat([result.merge(identity, on="unique_id", how="left"), *previous], ignore_index=True)
    else:  # every partition is still warming up: nothing to select yet
        result = pd.DataFrame(columns=[*columns, *IDENTITY[1:]])
    reselected = int((result["selected_at"] == now).sum())
    # Per (metric, model) only for a single partition: a range run's metadata is shared across tenants.
    per_metric_model = (
        {
            "by_metric_and_model": dg.MetadataValue.json(
                {str(m): accuracy_by_model(group) for m, group in result.groupby("metric", sort=True)}
            )
        }
        if len(context.partition_keys) == 1
        else {}
    )
    context.add_output_metadata(
        {
            **per_metric_model,
            **skipped,
            "warming_up_partitions": dg.MetadataValue.json(waiting),
            "series": len(result),
            "reselected_series": reselected,
            "reused_selections": len(result) - reselected,
            "selection_metric": config.selection_metric,
            "compute_seconds": time.perf_counter() - started,
            "winners": dg.MetadataValue.json(
                {str(k): int(v) for k, v in result["model"].value_counts().sort_index().items()}
            ),
            "by_model": dg.MetadataValue.json(accuracy_by_model(result)),
            "low_confidence_series": int(result["low_confidence"].sum()),
            **{
                f"median_{name}": float(pd.to_numeric(result[name]).median())
                for name in ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")
            },
        }
    )
    return result


MAX_CROSSING_ROWS = 50
"""Rows of a partition's ``expected_crossings`` table (soonest first); the capacity check lists them all."""


def soonest_crossings(marks: dict[str, SeriesMarks]) -> list[tuple[pd.Timestamp, str, Crossing]]:
    """Every expected crossing of the partition's series, soonest first (ties by series)."""
    found = [(crossing.ds, uid, crossing) for uid, series in marks.items() for crossing in series.crossings]
    return sorted(found, key=lambda row: (row[0], row[1]))


def expected_crossings(marks: dict[str, SeriesMarks]) -> dg.TableMetadataValue:
    """The series a rule pages on, soonest crossing first, as a table on the partition's page (where every
    alert links): on-call sees which series, when (UTC, with the 80 % interval) and how likely, next to the
    chart, without opening the check."""
    rows = soonest_crossings(marks)[:MAX_CROSSING_ROWS]
    return dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "series": uid,
                    "crossing_utc": f"{ds:%Y-%m-%d %H:%M}",
                    "interval_utc": f"{crossing.lo:%Y-%m-%d %H:%M} – {crossing.hi:%Y-%m-%d %H:%M}",
                    "line": crossing.note,
                }
            )
            for ds, uid, crossing in rows
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("series", "string"),
                dg.TableColumn("crossing_utc", "string", description="median expected crossing time"),
                dg.TableColumn("interval_utc", "string", description="80 % interval of the crossing time"),
                dg.TableColumn("line", "string", description="the rule's line and the breach probability"),
            ]
        ),
    )


def accuracy_by_model(accuracy: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Per winning model: series count, median selection metric, raw and calibrated 80/95% coverage."""
    columns = ["mase", "coverage_80", "coverage_95", "coverage_80_calibrated", "coverage_95_calibrated"]
    summary = {}
    for model, group in accuracy.groupby("model", sort=True):
        medians = group[columns].mean()
        summary[str(model)] = {"series": len(group)} | {
            name: (None if pd.isna(value) else round(float(value), 4)) for name, value in medians.items()
        }
    return summary


@series_asset(
    kinds={"duckdb", "statsforecast"},
)
def forecasts(
    context: dg.AssetExecutionContext,
    anomalies: pd.DataFrame,
    forecast_accuracy: pd.DataFrame,
    project: ProjectConfig,
    forecasting: ForecastingConfig,
    alert_rules: BreachThresholds,
    warehouse: DuckDBResource,
    prometheus: PrometheusExport,
) -> pd.DataFrame:
    """Point forecasts with calibrated 80/95% intervals over each metric's horizon, clipped to its bounds.

    Each series is refitted with the model its backtest selected (``forecast_accuracy``) unless another
    backend is configured. Reads the scored series (``anomalies`` carries every validated point plus its
    flags), so the step holds one copy of the history, not two. A partition the engine fails on keeps its
    previous forecasts and is reported; one still warming up gets none yet. Each partition's materialization
    carries its own chart (``plot``), PNG file and counts, range runs too.
    """
    config = forecasting.validated()
    catalog = project.catalog()
    identity = anomalies[IDENTITY].drop_duplicates("unique_id")
    started = time.perf_counter()
    # Fit on the series with anomalies replaced by expected values: an incident is not a pattern to repeat.
    cleaned = without_anomalies(anomalies)[[*IDENTITY, "ds", "y"]]
    fallbacks: list[str] = []
    budget = TenantBudget(config.tenant_points_per_run)

    def predict(tenant: str, metric: str, rows: pd.DataFrame) -> pd.DataFrame | None:
        prepared = prepared_partition(tenant, metric, rows, catalog, config, project.model_jobs, budget)
        if prepared is None:
            return None  # warming up: forecast_accuracy said so already
        frame, spec = prepared
        context.log.info(f"forecasting {frame['unique_id'].nunique()} series of {tenant}/{metric} ({spec})")
        stored = (
            forecast_accuracy
            if forecast_accuracy.empty
            else forecast_accuracy[forecast_accuracy["unique_id"].isin(frame["unique_id"])]
        )
        run = run_backend(
            frame,
            spec,
            backend=config.backend,
            selection=stored,
            timegpt=config.timegpt_options(),
            holidays_country=config.holidays_country(tenant) if config.backend == "prophet" else None,
        )
        if run.fallback_reason:
            context.log.warning(
                f"{config.backend} failed, statsforecast forecast instead: {run.fallback_reason}"
            )
            fallbacks.append(run.fallback_reason)
        return run.forecasts

    with worker_pool(project.dask_address, project.dask_retries):
        done = each_partition(context.partition_keys, cleaned, predict)
    previous, skipped = keep_failed_partitions(context, done.failed, len(done.results), warehouse)
    fitted = pd.concat(done.results.values(), ignore_index=True) if done.results else empty_forecast(LEVELS)
    result = pd.concat([fitted.merge(identity, on="unique_id", how="left"), *previous], ignore_index=True)
    result["low_confidence"] = result["model"].isin(MODEL_LOW_CONFIDENCE)
    compute_seconds = time.perf_counter() - started
    reports = Path(project.reports_dir)
    histories = dict(iter(anomalies.groupby(["tenant", "metric"], sort=False)))
    # Each partition's materialization carries its own chart, counts and PNG file, in a range run too: the
    # partition page every alert links to shows that partition's series and no other tenant's.
    for (tenant, metric), frame in result.groupby(["tenant", "metric"], sort=True):
        history = histories[(tenant, metric)]
        marks = alert_rules.marks(str(tenant), str(metric), frame, history)
        # The series a rule pages on first (soonest crossing), then the highest forecasts.
        at_risk = [uid for _, uid, _ in soonest_crossings(marks)]
        shown_ids = list(dict.fromkeys([*at_risk, *pick_series(frame, MAX_PANELS)]))[:MAX_PANELS]
        shown = frame[frame["unique_id"].isin(shown_ids)]
        png = forecast_plot_png(history, shown, history, marks, unit=catalog.spec(str(metric)).unit)
        path = reports / str(tenant) / f"{metric}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        context.add_asset_metadata(
            {
                "plot": dg.MetadataValue.md(png_markdown(png, "forecast")),
                "plot_path": dg.MetadataValue.path(str(path)),
                "series": frame["unique_id"].nunique(),
                "rows": len(frame),
                "expected_crossings": expected_crossings(marks),
            },
            partition_key=partition_key(str(tenant), str(metric)),
        )
    models = result.drop_duplicates("unique_id")["model"].value_counts().to_dict()
    fresh = result[result["unique_id"].isin(fitted["unique_id"])]
    metadata = {
        "series": int(result["unique_id"].nunique()),
        "rows": len(result),
        "compute_seconds": compute_seconds,
        "backend": config.backend,
        "fallbacks": len(fallbacks),
        "fallback_reasons": dg.MetadataValue.json(sorted(set(fallbacks))),
        "models": dg.MetadataValue.json({str(k): int(v) for k, v in models.items()}),
        "low_confidence_series": int(result.drop_duplicates("unique_id")["low_confidence"].sum()),
        **skipped,
        **prometheus.publish_forecasts(
            context.log, fresh, lambda: alert_rules.breach_outlook(fresh, anomalies)
        ),
    }
    context.add_output_metadata(metadata)
    return result
