"""tenants.yaml: channels per tenant and severity, grouping, timing and inhibition, and its errors."""

from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.matchers import Matcher
from intentvision_dagster.alerting.routing import load_routing
from intentvision_dagster.settings import ASSETS_DIR
from tests.alerting.support import write


def default_channels(path: Path) -> dict[str, str | None]:
    """{tenant: its default channel} from a tenants file."""
    return {tenant: route.channel("default") for tenant, route in load_routing(path).tenants.items()}


def test_shipped_tenants_load() -> None:
    routing = load_routing(ASSETS_DIR / "tenants.yaml")
    assert routing.operator_channel == "#intentvision-ops"
    assert routing.route("acme").channel("critical") == "#acme-oncall"
    assert default_channels(ASSETS_DIR / "tenants.yaml") == {
        "acme": "#acme-alerts",
        "globex": "#globex-oncall",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "tenants:\n  acme: {}\n",
            "tenants.yaml: tenant 'acme': field 'slack_channel' is missing",
        ),
        (
            "tenants:\n  acme: {slack_channel: acme-alerts}\n",
            "tenants.yaml: tenant 'acme': field 'slack_channel' is 'acme-alerts', "
            "expected '#channel-name' or a channel id like 'C0123ABCD'",
        ),
        (
            "tenants:\n  acme: {slack_channel: '#a', email: x@y}\n",
            "tenants.yaml: tenant 'acme': unknown field 'email', expected one of slack_channel, channels, "
            "holidays_country, prometheus_remote_write, group_by, group_wait, group_interval, "
            "repeat_interval, inhibit_rules",
        ),
        (
            "tenants:\n  Acme: {slack_channel: '#a'}\n",
            "tenants.yaml: tenant 'Acme': tenant 'Acme' is not a valid tenant id: use lowercase letters, "
            "digits and '-', starting with a letter or digit, at most 63 characters",
        ),
        ("tenants: [acme]\n", "tenants.yaml: expected a top-level 'tenants' mapping"),
    ],
)
def test_tenant_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        default_channels(write(tmp_path, body, "tenants.yaml"))
    assert str(raised.value) == message


def test_channel_ids_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "tenants:\n  acme: {slack_channel: C0123ABCD}\n", "tenants.yaml")
    assert default_channels(path) == {"acme": "C0123ABCD"}


def test_routing_per_severity_channels_timing_and_inhibition(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
operator: {slack_channel: "#ops"}
defaults:
  group_by: [alertname, metric]
  repeat_interval: 12h
  inhibit_rules:
    - {source: {severity: critical}, target: ["severity=~warning|info"], equal: [series]}
tenants:
  acme:
    slack_channel: "#acme"
    channels: {critical: "#acme-pager"}
    group_wait: 1m
    holidays_country: US
  globex: {slack_channel: "#globex", group_by: [host]}
""",
        "tenants.yaml",
    )
    routing = load_routing(path)
    acme, globex = routing.route("acme"), routing.route("globex")
    assert routing.operator_channel == "#ops"
    assert (acme.channel("critical"), acme.channel("warning")) == ("#acme-pager", "#acme")
    assert (acme.group_by, acme.group_wait, acme.repeat_interval) == (
        ("alertname", "metric"),
        pd.Timedelta(minutes=1),
        pd.Timedelta(hours=12),
    )
    assert globex.group_by == ("host",) and globex.channel("critical") == "#globex"
    (inhibit,) = acme.inhibit_rules
    assert inhibit.source == (Matcher("severity", "=", "critical"),)
    assert inhibit.target == (Matcher("severity", "=~", "warning|info"),) and inhibit.equal == ("series",)
    assert routing.route("initech").channel("critical") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "tenants:\n  acme: {slack_channel: '#a', group_wait: later}\n",
            "tenants.yaml: tenant 'acme': field 'group_wait' is 'later', expected a duration of 0s or more "
            "such as '4d' or '36h'",
        ),
        (
            "tenants:\n  acme: {slack_channel: '#a', channels: {page: '#p'}}\n",
            "tenants.yaml: tenant 'acme': field 'channels.page' is 'page', expected one of info, warning, "
            "critical",
        ),
        (
            "tenants:\n  acme: {slack_channel: '#a', inhibit_rules: [{source: [sev~crit], target: {}}]}\n",
            "tenants.yaml: tenant 'acme': inhibit rule #1: field 'source': matcher 'sev~crit' is not of the "
            "form name=value, name!=value, name=~re or name!~re",
        ),
        (
            "tenants:\n  acme: {slack_channel: '#a', group_by: 'host'}\n",
            "tenants.yaml: tenant 'acme': field 'group_by' is 'host', expected a list of label names",
        ),
    ],
)
def test_routing_errors_name_tenant_and_field(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_routing(write(tmp_path, body, "tenants.yaml"))
    assert str(raised.value) == message
