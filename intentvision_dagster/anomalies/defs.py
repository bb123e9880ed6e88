"""``anomalies``: the causal detector run over every series of a partition."""

import time

import dagster as dg
import pandas as pd

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.anomalies.plots import anomaly_plot_png
from intentvision_dagster.catalog import MetricCatalog
from intentvision_dagster.frequency import infer_freq, season_lengths
from intentvision_dagster.partitions import series_asset
from intentvision_dagster.plotting import png_markdown
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import counter_increase
from intentvision_dagster.severity import SEVERITIES

FLAGGED_SEVERITIES = SEVERITIES[1:]


def detect_partitions(validated: pd.DataFrame, catalog: MetricCatalog) -> pd.DataFrame:
    """Run the detector per metric (one vectorised call per metric, all tenants' series of it together), at
    the sensitivity the catalog gives that metric.

    Counters are scored (and downstream forecast) as their per-step increase, so a counter reset is a restart,
    not an anomaly; the output's ``y`` is the modelled value, the increase for counters.
    """
    parts = []
    for metric, frame in validated.groupby("metric", sort=True):
        spec = catalog.spec(str(metric))
        modelled = counter_increase(frame) if spec.kind == "counter" else frame
        seasons = season_lengths(infer_freq(modelled))
        parts.append(
            detect(modelled, season_length=seasons[0] if seasons else 1, sensitivity=spec.sensitivity)
        )
    return pd.concat(parts, ignore_index=True)


@series_asset(
    kinds={"duckdb", "pandas"},
)
def anomalies(
    context: dg.AssetExecutionContext, validated_series: pd.DataFrame, project: ProjectConfig
) -> pd.DataFrame:
    """Score, flag, severity, detector, reason and event id for every validated point."""
    started = time.perf_counter()
    scored = detect_partitions(validated_series, project.catalog())
    compute_seconds = time.perf_counter() - started
    flagged = scored[scored["is_anomaly"]]
    events = flagged.drop_duplicates("event_id")
    metadata = {
        "points": len(scored),
        "compute_seconds": compute_seconds,
        "anomalous_points": len(flagged),
        "events": len(events),
        **{
            f"points_{severity}": int((scored["severity"] == severity).sum())
            for severity in FLAGGED_SEVERITIES
        },
    }
    # A range run shares one metadata entry across its partitions (and tenants): series-level detail only for
    # a single-partition run.
    if len(context.partition_keys) == 1:
        metadata["latest_events"] = dg.MetadataValue.md(
            "\n".join(f"- `{row.event_id}`: {row.reason}" for row in events.tail(10).itertuples()) or "none"
        )
        metadata["plot"] = dg.MetadataValue.md(png_markdown(anomaly_plot_png(scored), "anomalies"))
    context.add_output_metadata(metadata)
    return scored
