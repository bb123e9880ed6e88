"""``anomalies``: the causal detector run over every series of a partition."""

import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.anomalies.plots import anomaly_plot_png
from intentvision_dagster.catalog import MetricCatalog
from intentvision_dagster.frequency import sampling_freq, season_lengths
from intentvision_dagster.isolation import each_partition
from intentvision_dagster.names import partition_key
from intentvision_dagster.partitions import keep_failed_partitions, series_asset
from intentvision_dagster.plotting import png_markdown
from intentvision_dagster.resources import ProjectConfig, PrometheusExport
from intentvision_dagster.series import counter_increase
from intentvision_dagster.severity import SEVERITIES

FLAGGED_SEVERITIES = SEVERITIES[1:]


def detect_partition(metric: str, validated: pd.DataFrame, catalog: MetricCatalog) -> pd.DataFrame:
    """Run the detector over every series of one partition (one vectorised call) at the sensitivity the
    catalog gives the metric.

    Counters are scored (and downstream forecast) as their per-step increase, so a counter reset is a restart,
    not an anomaly; the output's ``y`` is the modelled value, the increase for counters. While the partition
    has no series with two timestamps (warming up), there is no season to compare with and nothing is flagged.
    """
    spec = catalog.spec(metric)
    modelled = counter_increase(validated) if spec.kind == "counter" else validated
    freq = sampling_freq(modelled)
    seasons = season_lengths(freq) if freq else []
    return detect(modelled, season_length=seasons[0] if seasons else 1, sensitivity=spec.sensitivity)


@series_asset(
    kinds={"duckdb", "pandas"},
)
def anomalies(
    context: dg.AssetExecutionContext,
    validated_series: pd.DataFrame,
    project: ProjectConfig,
    warehouse: DuckDBResource,
    prometheus: PrometheusExport,
) -> pd.DataFrame:
    """Score, flag, severity, detector, reason and event id for every validated point.

    A partition the detector fails on keeps its previous scores and is reported; the others go on. Each
    partition's materialization carries its own chart (``plot``), PNG file and latest events, range runs too.
    """
    started = time.perf_counter()
    catalog = project.catalog()
    done = each_partition(
        context.partition_keys,
        validated_series,
        lambda _, metric, rows: detect_partition(metric, rows, catalog) if len(rows) else None,
    )
    kept, skipped = keep_failed_partitions(context, done.failed, len(done.results), warehouse)
    scored = pd.concat([*done.results.values(), *kept], ignore_index=True)
    compute_seconds = time.perf_counter() - started
    flagged = scored[scored["is_anomaly"]]
    events = flagged.drop_duplicates("event_id")
    metadata = {
        "points": len(scored),
        "compute_seconds": compute_seconds,
        **skipped,
        "anomalous_points": len(flagged),
        "events": len(events),
        **{
            f"points_{severity}": int((scored["severity"] == severity).sum())
            for severity in FLAGGED_SEVERITIES
        },
        **prometheus.publish_anomalies(context.log, list(done.results.values())),
    }
    context.add_output_metadata(metadata)
    # A range run's shared metadata holds counts only; each partition's materialization carries its own
    # chart, events and PNG file, so the page an anomaly alert links to shows that partition's series only.
    reports = Path(project.reports_dir)
    for (tenant, metric), frame in scored.groupby(["tenant", "metric"], sort=True):
        png = anomaly_plot_png(frame)
        path = reports / str(tenant) / f"{metric}.anomalies.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        latest = events[(events["tenant"] == tenant) & (events["metric"] == metric)].tail(10)
        context.add_asset_metadata(
            {
                "plot": dg.MetadataValue.md(png_markdown(png, "anomalies")),
                "plot_path": dg.MetadataValue.path(str(path)),
                "latest_events": dg.MetadataValue.md(
                    "\n".join(f"- `{row.event_id}`: {row.reason}" for row in latest.itertuples()) or "none"
                ),
                "points": len(frame),
            },
            partition_key=partition_key(str(tenant), str(metric)),
        )
    return scored
