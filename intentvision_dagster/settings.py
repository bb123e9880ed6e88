"""The one place that reads the environment.

Every path the product writes lives under ``INTENTVISION_HOME`` (default ``.intentvision/`` in the repo), so
a user can wipe or back up the whole state with one directory. Other modules take a :class:`Settings` (or a
Dagster resource built from it) instead of calling ``os.getenv`` themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from intentvision_dagster.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = PROJECT_ROOT / "assets"

HOME_ENV = "INTENTVISION_HOME"
SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"
SLACK_API_URL_ENV = "INTENTVISION_SLACK_API_URL"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"
NIXTLA_KEY_ENV = "NIXTLA_API_KEY"
NIXTLA_BASE_URL_ENV = "INTENTVISION_NIXTLA_BASE_URL"
REMOTE_WRITE_PASSWORD_ENV = "INTENTVISION_PROMETHEUS_REMOTE_WRITE_PASSWORD"
REMOTE_WRITE_TOKEN_ENV = "INTENTVISION_PROMETHEUS_REMOTE_WRITE_TOKEN"
LAKE_URI_ENV = "INTENTVISION_LAKE_URI"
AWS_ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
AWS_SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN_ENV = "AWS_SESSION_TOKEN"
SLACK_CHARTS_ENV = "INTENTVISION_SLACK_CHARTS"
_SWITCH = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
PROFILE_ENV = "INTENTVISION_PROFILE"
PROFILES = ("embedded", "distributed")
DASK_ADDRESS_ENV = "INTENTVISION_DASK_ADDRESS"
DASK_SCHEMES = ("tcp://", "tls://")
POSTGRES_ENV = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
"""dagster-postgres's ``postgres_db`` fields and the variables the instance reads them from at start-up."""
DISTRIBUTED_HEADER = """\
# Written by IntentVision for INTENTVISION_PROFILE=distributed (intentvision_dagster/settings.py): runs and
# events in Postgres (credentials read from the DAGSTER_PG_* variables when the instance starts), a run queue,
# and the `warehouse` pool limit from INTENTVISION_WAREHOUSE_POOL_LIMIT.
"""


@dataclass(frozen=True)
class Settings:
    """Paths and switches derived from the environment."""

    home: Path
    metrics_catalog: Path
    alert_rules: Path
    tenants_config: Path
    nightly_cron: str
    slack_token_set: bool
    slack_api_url: str | None
    model_jobs: int
    tenant_rules_dir: Path = ASSETS_DIR / "tenant_rules"
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL
    slack_charts: bool = True
    api_rate_limit: float = 200.0
    api_auth_failure_rate: float = 1.0
    api_max_body_bytes: int = 10 * 1024 * 1024
    api_max_points: int = 100_000
    api_max_label_name_bytes: int = 1024
    api_max_label_value_bytes: int = 2048
    api_max_labels: int = 30
    prometheus_sources: Path | None = None
    forecast_backend: str = "statsforecast"
    nixtla_key_set: bool = False
    nixtla_base_url: str | None = None
    selection_metric: str = "mase"
    reselect_days: float = 7.0
    max_partition_points: int = 10_000_000
    tenant_points_per_run: int = 50_000_000
    remote_write_url: str = ""
    remote_write_username: str | None = None
    remote_write_password_set: bool = False
    remote_write_token_set: bool = False
    remote_write_timeout: float = 10.0
    export_horizons: str = "1h,24h"
    asset_owners: tuple[str, ...] = ("team:intentvision",)
    lake_uri: str = ""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_set: bool = False
    aws_secret_key_set: bool = False
    aws_session_token_set: bool = False
    profile: str = "embedded"
    dask_address: str = "local"
    dask_retries: int = 3
    max_concurrent_runs: int = 10
    warehouse_pool_limit: int = 1
    postgres_env_set: frozenset[str] = frozenset()

    @property
    def distributed(self) -> bool:
        return self.profile == "distributed"

    @property
    def dask_compute_address(self) -> str | None:
        """Where model fitting goes: the Dask address in the distributed profile, else None (local pool)."""
        return self.dask_address if self.distributed else None

    @property
    def api_dir(self) -> Path:
        """The API's own state: tenant registry, hashed keys and audit log (never the warehouse)."""
        return self.home / "api"

    @property
    def registry_path(self) -> Path:
        return self.api_dir / "registry.sqlite"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def side_tables_path(self) -> Path:
        """The DuckDB file of the quarantine and the alerting state: the warehouse, or with a lake (where the
        asset tables are) a file of its own."""
        return self.home / "state.duckdb" if self.lake_uri else self.warehouse_path

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def outbox_path(self) -> Path:
        return self.home / "outbox" / "alerts.jsonl"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def ensure_dirs(self) -> None:
        for path in (
            self.home,
            self.landing_dir,
            self.outbox_path.parent,
            self.dagster_home,
            self.reports_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """An on/off variable (1/0, true/false, yes/no, on/off); anything else is an error naming it."""
    value = env.get(name)
    if not value:
        return default
    if value.strip().lower() not in _SWITCH:
        raise ConfigurationError(f"{name} is {value!r}, expected on or off (1/0, true/false, yes/no)")
    return _SWITCH[value.strip().lower()]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get(HOME_ENV) or PROJECT_ROOT / ".intentvision").expanduser().resolve()
    profile = env.get(PROFILE_ENV) or "embedded"
    if profile not in PROFILES:
        raise ConfigurationError(f"{PROFILE_ENV}={profile!r} is not one of {', '.join(PROFILES)}")
    dask_address = env.get(DASK_ADDRESS_ENV) or "local"
    if dask_address != "local" and not dask_address.startswith(DASK_SCHEMES):
        raise ConfigurationError(
            f"{DASK_ADDRESS_ENV}={dask_address!r} is neither 'local' nor a scheduler address "
            "such as tcp://host:8786"
        )
    return Settings(
        home=home,
        metrics_catalog=Path(env.get("INTENTVISION_METRICS") or ASSETS_DIR / "metrics.yaml"),
        alert_rules=Path(env.get("INTENTVISION_ALERT_RULES") or ASSETS_DIR / "alert_rules.yaml"),
        tenants_config=Path(env.get("INTENTVISION_TENANTS") or ASSETS_DIR / "tenants.yaml"),
        nightly_cron=env.get("INTENTVISION_NIGHTLY_CRON") or "0 2 * * *",
        slack_token_set=bool(env.get(SLACK_TOKEN_ENV)),
        slack_api_url=env.get(SLACK_API_URL_ENV),
        # Two worker processes by default, from a forkserver pool (forecasting/workers.py): statsforecast's
        # own pool forks the threaded Dagster process, which deadlocked now and then. Small partitions
        # (under 25 series per worker) are fitted in-process.
        model_jobs=int(env.get("INTENTVISION_MODEL_JOBS") or 2),
        # TimeGPT forecasts whenever a key is set (the statsforecast engine stands in when it fails).
        forecast_backend=env.get("INTENTVISION_FORECAST_BACKEND")
        or ("timegpt" if env.get(NIXTLA_KEY_ENV) else "statsforecast"),
        nixtla_key_set=bool(env.get(NIXTLA_KEY_ENV)),
        nixtla_base_url=env.get(NIXTLA_BASE_URL_ENV),
        selection_metric=env.get("INTENTVISION_SELECTION_METRIC") or "mase",
        reselect_days=float(env.get("INTENTVISION_RESELECT_DAYS") or 7),
        max_partition_points=int(env.get("INTENTVISION_MAX_PARTITION_POINTS") or 10_000_000),
        tenant_points_per_run=int(env.get("INTENTVISION_TENANT_POINTS_PER_RUN") or 50_000_000),
        api_rate_limit=float(env.get("INTENTVISION_API_RATE_LIMIT") or 200.0),
        api_auth_failure_rate=float(env.get("INTENTVISION_API_AUTH_FAILURE_RATE") or 1.0),
        api_max_body_bytes=int(env.get("INTENTVISION_API_MAX_BODY_BYTES") or 10 * 1024 * 1024),
        api_max_points=int(env.get("INTENTVISION_API_MAX_POINTS") or 100_000),
        api_max_label_name_bytes=int(env.get("INTENTVISION_API_MAX_LABEL_NAME_BYTES") or 1024),
        api_max_label_value_bytes=int(env.get("INTENTVISION_API_MAX_LABEL_VALUE_BYTES") or 2048),
        api_max_labels=int(env.get("INTENTVISION_API_MAX_LABELS") or 30),
        prometheus_sources=Path(
            env.get("INTENTVISION_PROMETHEUS_SOURCES") or home / "prometheus_sources.yaml"
        ),
        tenant_rules_dir=Path(env.get("INTENTVISION_TENANT_RULES") or ASSETS_DIR / "tenant_rules"),
        dagster_ui_url=env.get("INTENTVISION_DAGSTER_UI_URL") or DEFAULT_DAGSTER_UI_URL,
        # An incident's first message carries the charts of its series (Slack: uploaded into its thread).
        slack_charts=_switch(env, SLACK_CHARTS_ENV, default=True),
        # Forecasts and anomaly scores are remote-written to Prometheus only when a URL is set.
        remote_write_url=env.get("INTENTVISION_PROMETHEUS_REMOTE_WRITE_URL") or "",
        remote_write_username=env.get("INTENTVISION_PROMETHEUS_REMOTE_WRITE_USERNAME") or None,
        remote_write_password_set=bool(env.get(REMOTE_WRITE_PASSWORD_ENV)),
        remote_write_token_set=bool(env.get(REMOTE_WRITE_TOKEN_ENV)),
        remote_write_timeout=float(env.get("INTENTVISION_PROMETHEUS_REMOTE_WRITE_TIMEOUT") or 10.0),
        export_horizons=env.get("INTENTVISION_PROMETHEUS_EXPORT_HORIZONS") or "1h,24h",
        # Shown as the assets' owners in the Dagster UI: team:<name> or e-mail addresses, comma-separated.
        asset_owners=tuple(
            owner.strip()
            for owner in (env.get("INTENTVISION_ASSET_OWNERS") or "team:intentvision").split(",")
            if owner.strip()
        ),
        # Set: every asset is a Delta table under this root (file:///... or s3://...), not a DuckDB table.
        lake_uri=env.get(LAKE_URI_ENV) or "",
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        aws_access_key_set=bool(env.get(AWS_ACCESS_KEY_ENV)),
        aws_secret_key_set=bool(env.get(AWS_SECRET_KEY_ENV)),
        aws_session_token_set=bool(env.get(AWS_SESSION_TOKEN_ENV)),
        profile=profile,
        dask_address=dask_address,
        dask_retries=int(env.get("INTENTVISION_DASK_RETRIES") or 3),
        max_concurrent_runs=int(env.get("INTENTVISION_MAX_CONCURRENT_RUNS") or 10),
        # One writing run at a time by default in both profiles: the quarantine and alert tables stay in one
        # DuckDB file (state.duckdb beside a lake), which takes one writer.
        warehouse_pool_limit=int(env.get("INTENTVISION_WAREHOUSE_POOL_LIMIT") or 1),
        postgres_env_set=frozenset(name for name in POSTGRES_ENV.values() if env.get(name)),
    )


def prepare_dagster_home(settings: Settings) -> Path:
    """Point Dagster at ``$INTENTVISION_HOME/dagster_home`` with the repo's ``dagster.yaml`` (the embedded
    profile) or its distributed variant (:func:`distributed_instance_config`).

    Respects a ``DAGSTER_HOME`` the user already exported.
    """
    settings.ensure_dirs()
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    if settings.distributed:
        text = yaml.safe_dump(distributed_instance_config(settings), sort_keys=False)
        (dagster_home / "dagster.yaml").write_text(DISTRIBUTED_HEADER + text)
    else:
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    return dagster_home


def distributed_instance_config(settings: Settings) -> dict:
    """The repo's ``dagster.yaml`` with Postgres storage, ``max_concurrent_runs`` and the pool limit raised.

    Credentials stay ``env:`` references, so no password is ever written to disk; a missing variable is
    named here rather than when the daemon first connects. ``DAGSTER_PG_PORT`` is optional (5432).
    """
    required = [name for field, name in POSTGRES_ENV.items() if field != "port"]
    missing = [name for name in required if name not in settings.postgres_env_set]
    if missing:
        raise ConfigurationError(
            f"{PROFILE_ENV}=distributed keeps the Dagster instance in Postgres: set {', '.join(missing)}"
        )
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    connection: dict[str, object] = {
        field: {"env": name}
        for field, name in POSTGRES_ENV.items()
        if field != "port" or name in settings.postgres_env_set
    }
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres installs psycopg2.
    connection["scheme"] = "postgresql+psycopg2"
    config["storage"] = {"postgres": {"postgres_db": connection}}
    config["concurrency"] = {
        "runs": {"max_concurrent_runs": settings.max_concurrent_runs},
        "pools": {**config["concurrency"]["pools"], "default_limit": settings.warehouse_pool_limit},
    }
    return config


def nixtla_api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The TimeGPT API key for the command line (the Dagster resources get it through ``dg.EnvVar``)."""
    env = os.environ if environ is None else environ
    return env.get(NIXTLA_KEY_ENV) or None
