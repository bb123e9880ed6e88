"""``forecast_accuracy`` (model selection), then ``forecasts`` with their plots."""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.catalog import MetricCatalog
from intentvision_dagster.forecasting.backends import run_backend
from intentvision_dagster.forecasting.cleaning import without_anomalies
from intentvision_dagster.forecasting.gaps import fill_missing_steps
from intentvision_dagster.forecasting.models import MODEL_LOW_CONFIDENCE
from intentvision_dagster.forecasting.plots import forecast_plot_png
from intentvision_dagster.forecasting.resources import ForecastingConfig
from intentvision_dagster.forecasting.selection import select_models, selection_columns
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.frequency import horizon_steps, infer_freq
from intentvision_dagster.partitions import PARTITION_EXPR, series_asset
from intentvision_dagster.plotting import png_markdown
from intentvision_dagster.resources import BreachThresholds, ProjectConfig
from intentvision_dagster.warehouse import SCHEMA, arrow_frame, table_exists

IDENTITY = ["unique_id", "tenant", "metric", "labels"]
LEVELS = (80, 95)


def per_metric(
    frame: pd.DataFrame, catalog: MetricCatalog, config: ForecastingConfig, n_jobs: int
) -> Iterator[tuple[str, str, pd.DataFrame, ForecastSpec]]:
    """One vectorised engine call per (tenant, metric): its regular-step frame and the engine's spec.

    Missing steps are filled by metric kind (:mod:`~intentvision_dagster.forecasting.gaps`) first.
    """
    for (tenant, metric), group in frame.groupby(["tenant", "metric"], sort=True):
        entry = catalog.spec(str(metric))
        freq = infer_freq(group)
        yield (
            str(tenant),
            str(metric),
            fill_missing_steps(group, freq, entry.kind).drop(columns="filled"),
            ForecastSpec(
                horizon=horizon_steps(entry.horizon, freq),
                freq=freq,
                levels=LEVELS,
                lower=entry.min_value,
                upper=entry.max_value,
                n_jobs=n_jobs,
                metric=config.selection_metric,
                n_windows=config.backtest_windows,
            ),
        )


def previous_selection(warehouse: DuckDBResource, keys: list[str]) -> pd.DataFrame:
    """The stored ``forecast_accuracy`` rows of these partitions (empty before the first selection)."""
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "forecast_accuracy"):
            return pd.DataFrame()
        placeholders = ", ".join("?" for _ in keys)
        relation = conn.sql(
            f"select * from {SCHEMA}.forecast_accuracy where {PARTITION_EXPR} in ({placeholders})",
            params=keys,
        )
        previous = arrow_frame(relation)
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
    parts = []
    for _, _, frame, spec in per_metric(modelled, catalog, config, project.model_jobs):
        kept = stored[stored["unique_id"].isin(frame["unique_id"])] if not stored.empty else stored
        todo = frame[~frame["unique_id"].isin(kept["unique_id"])] if not kept.empty else frame
        if not kept.empty:
            parts.append(kept.drop(columns=[c for c in IDENTITY if c != "unique_id"]))
        if not todo.empty:
            parts.append(select_models(todo, spec).assign(selected_at=now))
    columns = [*selection_columns(LEVELS), "selected_at"]
    result = pd.concat(parts, ignore_index=True)[columns].merge(identity, on="unique_id", how="left")
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
                f"median_{name}": float(result[name].median())
                for name in ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")
            },
        }
    )
    return result


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
) -> pd.DataFrame:
    """Point forecasts with calibrated 80/95% intervals over each metric's horizon, clipped to its bounds.

    Each series is refitted with the model its backtest selected (``forecast_accuracy``) unless another
    backend is configured. Reads the scored series (``anomalies`` carries every validated point plus its
    flags), so the step holds one copy of the history, not two.
    """
    config = forecasting.validated()
    catalog = project.catalog()
    identity = anomalies[IDENTITY].drop_duplicates("unique_id")
    started = time.perf_counter()
    # Fit on the series with anomalies replaced by expected values: an incident is not a pattern to repeat.
    cleaned = without_anomalies(anomalies)[[*IDENTITY, "ds", "y"]]
    parts, fallbacks = [], []
    for tenant, metric, frame, spec in per_metric(cleaned, catalog, config, project.model_jobs):
        context.log.info(f"forecasting {frame['unique_id'].nunique()} series of {metric} ({spec})")
        run = run_backend(
            frame,
            spec,
            backend=config.backend,
            selection=forecast_accuracy[forecast_accuracy["unique_id"].isin(frame["unique_id"])],
            timegpt=config.timegpt_options(),
            holidays_country=config.holidays_country(tenant) if config.backend == "prophet" else None,
        )
        if run.fallback_reason:
            context.log.warning(
                f"{config.backend} failed, statsforecast forecast instead: {run.fallback_reason}"
            )
            fallbacks.append(run.fallback_reason)
        parts.append(run.forecasts)
    result = pd.concat(parts, ignore_index=True).merge(identity, on="unique_id", how="left")
    result["low_confidence"] = result["model"].isin(MODEL_LOW_CONFIDENCE)
    compute_seconds = time.perf_counter() - started
    reports = Path(project.reports_dir)
    histories = dict(iter(anomalies.groupby(["tenant", "metric"], sort=False)))
    plots = {}
    for (tenant, metric), frame in result.groupby(["tenant", "metric"], sort=True):
        history = histories[(tenant, metric)]
        png = forecast_plot_png(
            history, frame, history, threshold=alert_rules.threshold(str(tenant), str(metric))
        )
        path = reports / str(tenant) / f"{metric}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        plots[f"{tenant}/{metric}"] = (png, path)
    models = result.drop_duplicates("unique_id")["model"].value_counts().to_dict()
    metadata = {
        "series": int(result["unique_id"].nunique()),
        "rows": len(result),
        "compute_seconds": compute_seconds,
        "backend": config.backend,
        "fallbacks": len(fallbacks),
        "fallback_reasons": dg.MetadataValue.json(sorted(set(fallbacks))),
        "models": dg.MetadataValue.json({str(k): int(v) for k, v in models.items()}),
        "low_confidence_series": int(result.drop_duplicates("unique_id")["low_confidence"].sum()),
    }
    # A range run shares one metadata entry across its partitions: only a single-partition run gets the plot,
    # so no partition's page shows another tenant's series. Every partition's PNG is in the reports folder.
    if len(plots) == 1:
        ((png, path),) = plots.values()
        metadata |= {
            "plot": dg.MetadataValue.md(png_markdown(png, "forecast")),
            "plot_path": dg.MetadataValue.path(str(path)),
        }
    context.add_output_metadata(metadata)
    return result
