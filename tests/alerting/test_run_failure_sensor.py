"""A failed run of the product's job is reported to the operator channel, once, through slack-sdk."""

import dagster as dg

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.partitions import series_partitions
from intentvision_dagster.runs import run_pipeline
from tests.conftest import settings_for
from tests.support.slack_standin import SlackStandIn

TOKEN = "xoxb-run-failures"


def test_a_failed_run_is_posted_once_to_the_operator_channel(tmp_path, monkeypatch):
    key = "acme/node_cpu_utilization_percent"
    with SlackStandIn(token=TOKEN, channels={"#intentvision-ops"}) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        settings = settings_for(
            tmp_path / "home", SLACK_BOT_TOKEN=TOKEN, INTENTVISION_SLACK_API_URL=slack.url
        )
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(series_partitions.name, [key])
        (outcome,) = run_pipeline(defs, instance, [key])  # nothing landed: validation fails the run
        assert not outcome.success
        run = instance.get_run_by_id(outcome.run_id)
        failure = next(
            record.dagster_event
            for record in instance.all_logs(outcome.run_id)
            if record.dagster_event and record.dagster_event.event_type_value == "PIPELINE_FAILURE"
        )
        sensor = defs.resolve_sensor_def("run_failure_alert_sensor")
        for _ in range(2):  # the daemon may evaluate the same failure twice
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=run,
                resources=defs.resources,
            ).for_run_failure()
            sensor(context)
    (message,) = slack.messages
    assert message.channel == "#intentvision-ops"
    assert message.text.startswith(f"series_pipeline run {outcome.run_id[:8]} failed: ")
    assert f"http://127.0.0.1:3000/runs/{outcome.run_id}" in message.blocks[1]["text"]["text"]
    assert {"type": "mrkdwn", "text": "*tenant* acme"} in message.blocks[2]["elements"]
