"""``forecasts`` and ``forecast_accuracy``, and the nightly schedule that refreshes every partition."""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.alerting.rules import Rule
from intentvision_dagster.anomalies.detector import without_anomalies
from intentvision_dagster.catalog import MetricCatalog
from intentvision_dagster.forecasting.backtest import backtest
from intentvision_dagster.forecasting.engine import MODEL_LOW_CONFIDENCE, forecast
from intentvision_dagster.forecasting.frequency import horizon_steps, infer_freq
from intentvision_dagster.forecasting.plots import forecast_plot_png, png_markdown
from intentvision_dagster.ingest.defs import PIPELINE_JOB_NAME
from intentvision_dagster.partitions import series_asset, series_partitions
from intentvision_dagster.resources import ProjectConfig

NIGHTLY_PARTITIONS_PER_RUN = 100
IDENTITY = ["unique_id", "tenant", "metric", "labels"]


def per_metric(
    validated: pd.DataFrame, catalog: MetricCatalog, n_jobs: int
) -> Iterator[tuple[str, pd.DataFrame, dict]]:
    """One vectorised model call per metric: its frame, frequency, horizon steps, bounds and worker count."""
    for metric, frame in validated.groupby("metric", sort=True):
        spec = catalog.spec(str(metric))
        freq = infer_freq(frame)
        yield (
            str(metric),
            frame,
            {
                "horizon": horizon_steps(spec.horizon, freq),
                "freq": freq,
                "lower": spec.min_value,
                "upper": spec.max_value,
                "n_jobs": n_jobs,
            },
        )


def breach_threshold(rules: list[Rule], metric: str) -> float | None:
    return next(
        (rule.threshold for rule in rules if rule.kind == "forecast_breach" and rule.metric == metric), None
    )


@series_asset(
    kinds={"duckdb", "statsforecast"},
)
def forecasts(
    context: dg.AssetExecutionContext, anomalies: pd.DataFrame, project: ProjectConfig
) -> pd.DataFrame:
    """Point forecasts with 80/95% intervals over each metric's horizon, clipped to the metric's bounds.

    Reads the scored series (``anomalies`` carries every validated point plus its flags), so the step holds
    one copy of the history, not two.
    """
    catalog, rules = project.catalog(), project.rules()
    identity = anomalies[IDENTITY].drop_duplicates("unique_id")
    started = time.perf_counter()
    # Fit on the series with anomalies replaced by expected values: an incident is not a pattern to repeat.
    cleaned = without_anomalies(anomalies)[[*IDENTITY, "ds", "y"]]
    parts = []
    for metric, frame, params in per_metric(cleaned, catalog, project.model_jobs):
        context.log.info(f"forecasting {frame['unique_id'].nunique()} series of {metric} ({params})")
        parts.append(forecast(frame, levels=(80, 95), **params))
    result = pd.concat(parts, ignore_index=True).merge(identity, on="unique_id", how="left")
    compute_seconds = time.perf_counter() - started
    reports = Path(project.reports_dir)
    histories = dict(iter(anomalies.groupby(["tenant", "metric"], sort=False)))
    plots = {}
    for (tenant, metric), frame in result.groupby(["tenant", "metric"], sort=True):
        history = histories[(tenant, metric)]
        png = forecast_plot_png(history, frame, history, threshold=breach_threshold(rules, str(metric)))
        path = reports / str(tenant) / f"{metric}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        plots[f"{tenant}/{metric}"] = (png, path)
    models = result.drop_duplicates("unique_id")["model"].value_counts().to_dict()
    metadata = {
        "series": int(result["unique_id"].nunique()),
        "rows": len(result),
        "compute_seconds": compute_seconds,
        "models": dg.MetadataValue.json({str(k): int(v) for k, v in models.items()}),
        "low_confidence_series": int(
            result.drop_duplicates("unique_id")["model"].isin(MODEL_LOW_CONFIDENCE).sum()
        ),
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


@series_asset(
    kinds={"duckdb", "utilsforecast"},
    deps=[forecasts],
)
def forecast_accuracy(
    context: dg.AssetExecutionContext, anomalies: pd.DataFrame, project: ProjectConfig
) -> pd.DataFrame:
    """Rolling-origin backtest per series: MAE, RMSE, MAPE, sMAPE, MASE and 80/95% interval coverage."""
    catalog = project.catalog()
    # The modelled series (a counter's increase), as the forecasts see it, with its anomalies left in.
    modelled = anomalies[[*IDENTITY, "ds", "y"]]
    identity = modelled[IDENTITY].drop_duplicates("unique_id")
    started = time.perf_counter()
    parts = [
        backtest(frame, levels=(80, 95), **params)
        for _, frame, params in per_metric(modelled, catalog, project.model_jobs)
    ]
    result = pd.concat(parts, ignore_index=True).merge(identity, on="unique_id", how="left")
    context.add_output_metadata(
        {
            "series": len(result),
            "compute_seconds": time.perf_counter() - started,
            **{
                f"median_{name}": float(result[name].median())
                for name in ("mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95")
            },
        }
    )
    return result


def nightly_run_requests(keys: list[str], per_run: int = NIGHTLY_PARTITIONS_PER_RUN) -> list[dg.RunRequest]:
    """Cover every partition with contiguous key ranges of at most ``per_run`` keys: few, bounded runs."""
    requests = []
    for start in range(0, len(keys), per_run):
        chunk = keys[start : start + per_run]
        requests.append(
            dg.RunRequest(
                tags={
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                    "intentvision/nightly": "true",
                }
            )
        )
    return requests


def build_nightly_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job_name=PIPELINE_JOB_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        name="nightly_forecasts",
    )
    def nightly_forecasts(context: dg.ScheduleEvaluationContext):
        """Refresh forecasts, accuracy and anomalies for every active partition."""
        keys = context.instance.get_dynamic_partitions(series_partitions.name)
        return nightly_run_requests(keys) or dg.SkipReason("no partitions yet: land some data first")

    return nightly_forecasts
