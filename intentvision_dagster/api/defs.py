"""Dagster wiring of the API domain: the Prometheus pull sensor (the HTTP API itself runs under uvicorn)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from intentvision_dagster.api.prometheus_pull import load_sources, pull_source


class PrometheusPull(dg.ConfigurableResource):
    """Where the pull sources are configured and where pulled batches land."""

    sources_path: str
    landing_dir: str


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def prometheus_pull_sensor(
    context: dg.SensorEvaluationContext, prometheus_pull: PrometheusPull
) -> dg.SkipReason:
    """Pull every configured PromQL source into the landing area; the landing sensor then requests runs.

    The cursor holds each source's last pulled end time; a failing source is logged and retried next tick
    without holding the others back.
    """
    sources = load_sources(Path(prometheus_pull.sources_path))
    if not sources:
        return dg.SkipReason(f"no Prometheus sources configured in {prometheus_pull.sources_path}")
    cursor = json.loads(context.cursor or "{}")
    outcomes = []
    for source in sources:
        last = cursor.get(source.key)
        try:
            batch, end = pull_source(
                source, Path(prometheus_pull.landing_dir), datetime.fromisoformat(last) if last else None
            )
        except Exception as exc:  # one source down must not stop the others
            context.log.warning(f"Prometheus source {source.key} failed: {exc}")
            outcomes.append(f"{source.key}: failed")
            continue
        cursor[source.key] = end.astimezone(UTC).isoformat()
        outcomes.append(f"{source.key}: {batch.rows if batch else 0} points")
    context.update_cursor(json.dumps(cursor))
    return dg.SkipReason("pulled " + "; ".join(outcomes))
