"""The profile switch: the embedded default leaves the instance exactly as before; the distributed profile
writes a Postgres instance with its credentials left to the environment; bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from intentvision_dagster.errors import ConfigurationError
from intentvision_dagster.settings import PROJECT_ROOT, load_settings, prepare_dagster_home

POSTGRES = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "s3cret-never-on-disk",
    "DAGSTER_PG_DB": "dagster",
}


def _dagster_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = load_settings({"INTENTVISION_HOME": str(tmp_path / "home"), **env})
    return prepare_dagster_home(settings) / "dagster.yaml"


def test_the_embedded_default_copies_the_repo_instance_file_byte_for_byte(tmp_path, monkeypatch) -> None:
    written = _dagster_yaml(tmp_path, monkeypatch)
    assert written.read_bytes() == (PROJECT_ROOT / "dagster.yaml").read_bytes()
    settings = load_settings({})
    assert (settings.profile, settings.dask_compute_address) == ("embedded", None)


def test_the_distributed_profile_keeps_runs_in_postgres_with_credentials_from_the_environment(
    tmp_path, monkeypatch
) -> None:
    written = _dagster_yaml(
        tmp_path,
        monkeypatch,
        INTENTVISION_PROFILE="distributed",
        INTENTVISION_MAX_CONCURRENT_RUNS="6",
        INTENTVISION_WAREHOUSE_POOL_LIMIT="3",
        DAGSTER_PG_PORT="6543",
        **POSTGRES,
    )
    text = written.read_text()
    assert "s3cret-never-on-disk" not in text
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"] == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "scheme": "postgresql+psycopg2",
    }
    assert config["concurrency"] == {
        "runs": {"max_concurrent_runs": 6},
        "pools": {"granularity": "run", "default_limit": 3},
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    for name, value in {**POSTGRES, "DAGSTER_PG_PORT": "6543"}.items():
        monkeypatch.setenv(name, value)
    dagster_instance_config(str(written.parent))  # Dagster's own schema check accepts it


def test_the_port_is_left_to_dagster_postgres_default_when_unset(tmp_path, monkeypatch) -> None:
    written = _dagster_yaml(tmp_path, monkeypatch, INTENTVISION_PROFILE="distributed", **POSTGRES)
    assert "port" not in yaml.safe_load(written.read_text())["storage"]["postgres"]["postgres_db"]


def test_the_distributed_profile_names_the_missing_postgres_variables(tmp_path, monkeypatch) -> None:
    with pytest.raises(ConfigurationError, match=r"set DAGSTER_PG_PASSWORD, DAGSTER_PG_DB$"):
        _dagster_yaml(
            tmp_path,
            monkeypatch,
            INTENTVISION_PROFILE="distributed",
            DAGSTER_PG_HOST="db.internal",
            DAGSTER_PG_USER="dagster",
        )


def test_an_unknown_profile_is_refused_naming_variable_and_value() -> None:
    with pytest.raises(
        ConfigurationError, match="INTENTVISION_PROFILE='cluster' is not one of embedded, distributed"
    ):
        load_settings({"INTENTVISION_PROFILE": "cluster"})


def test_a_dask_address_must_be_local_or_a_scheduler_url() -> None:
    with pytest.raises(ConfigurationError, match="INTENTVISION_DASK_ADDRESS='scheduler:8786' is neither"):
        load_settings({"INTENTVISION_DASK_ADDRESS": "scheduler:8786"})
    settings = load_settings(
        {"INTENTVISION_PROFILE": "distributed", "INTENTVISION_DASK_ADDRESS": "tcp://10.0.0.5:8786"}
    )
    assert settings.dask_compute_address == "tcp://10.0.0.5:8786"
    assert load_settings({"INTENTVISION_PROFILE": "distributed"}).dask_compute_address == "local"
