"""Every project error is an IntentVisionError and keeps the built-in base its callers catch."""

from __future__ import annotations

import pytest

from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.delivery import NoChannelError
from intentvision_dagster.anomalies.files import DetectFileError
from intentvision_dagster.api.app import ApiError
from intentvision_dagster.api.protocols.columns import PayloadError
from intentvision_dagster.api.reads import WarehouseBusy
from intentvision_dagster.api.registry import RegistryError, UnknownKeyError
from intentvision_dagster.catalog import CatalogError
from intentvision_dagster.errors import IntentVisionError
from intentvision_dagster.forecasting.files import ForecastFileError
from intentvision_dagster.ingest.files import IngestFileError
from intentvision_dagster.names import InvalidNameError, validate_tenant
from intentvision_dagster.quality.schema import NoValidRowsError
from intentvision_dagster.series_files import SeriesFileError


@pytest.mark.parametrize(
    ("error", "builtin", "exit_code", "http_status"),
    [
        (IngestFileError("x"), ValueError, 1, 422),
        (SeriesFileError("x"), ValueError, 1, 422),
        (DetectFileError("x"), ValueError, 1, 422),
        (ForecastFileError("x"), ValueError, 1, 422),
        (NoValidRowsError("acme", "cpu", {"finite": 1}, "nan"), ValueError, 1, 422),
        (InvalidNameError("x"), ValueError, 1, 422),
        (RegistryError("x"), ValueError, 1, 422),
        (PayloadError("x"), ValueError, 1, 400),
        (PayloadError("x", status=413), ValueError, 1, 413),
        (ConfigError("x"), ValueError, 1, 500),
        (CatalogError("x"), ValueError, 1, 500),
        (NoChannelError("x"), LookupError, 1, 404),
        (UnknownKeyError("x"), LookupError, 1, 404),
        (WarehouseBusy("x"), RuntimeError, 1, 503),
        (ApiError(429, "x"), IntentVisionError, 1, 429),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_each_error_carries_its_exit_code_and_status_and_keeps_its_builtin_base(
    error, builtin, exit_code, http_status
):
    assert isinstance(error, IntentVisionError) and isinstance(error, builtin)
    assert (error.exit_code, error.http_status) == (exit_code, http_status)


def test_unknown_key_is_still_a_registry_error_for_callers_that_catch_those():
    assert issubclass(UnknownKeyError, RegistryError)


def test_a_bad_tenant_id_is_an_input_error_and_still_a_value_error():
    with pytest.raises(ValueError, match="is not a valid tenant id") as raised:
        validate_tenant("Acme!")
    assert isinstance(raised.value, InvalidNameError)
