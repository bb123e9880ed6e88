"""CSV in, forecast CSV out, for ``intentvision forecast``: the assets' engine on a file, no click.

The input is parsed like ``intentvision detect``'s (``unique_id,ds,y``, or ``timestamp,value`` for one
series), missing steps are filled as for a gauge, each history is cut to its current regime
(:mod:`~.regimes`) as the pipeline cuts it, and :func:`~.backends.run_backend` forecasts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from intentvision_dagster.errors import InputError
from intentvision_dagster.forecasting.backends import TimeGPTOptions, run_backend
from intentvision_dagster.forecasting.gaps import fill_missing_steps
from intentvision_dagster.forecasting.models import MODEL_NAMES
from intentvision_dagster.forecasting.regimes import current_regime
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.frequency import infer_freq, season_lengths
from intentvision_dagster.series_files import SeriesFileError, read_series

BACKEND_MODELS = {"Prophet": "prophet", "TimeGPT": "timegpt"}
MODEL_CHOICES = ("auto", *MODEL_NAMES, *BACKEND_MODELS)
PROGRESS_SERIES = 50
"""Inputs with more series than this get a progress bar."""


class ForecastFileError(InputError):
    """An input or option the engine cannot take; the message names the file, field and value."""


@dataclass(frozen=True)
class ForecastInput:
    frame: pd.DataFrame
    freq: str
    warning: str = ""
    """What was done to repeated or out-of-order timestamps, if anything."""

    @property
    def series(self) -> int:
        return self.frame["unique_id"].nunique()

    @property
    def long_running(self) -> bool:
        return self.series > PROGRESS_SERIES


@dataclass(frozen=True)
class ForecastOutput:
    frame: pd.DataFrame
    series: int
    freq: str
    models: dict[str, int]
    fallback_reason: str | None


def read_forecast_input(path: Path, freq: str | None) -> ForecastInput:
    """Parse ``path`` and settle the frequency: ``freq`` as given (validated) or inferred from the data."""
    try:
        source = read_series(path)
    except SeriesFileError as exc:
        raise ForecastFileError(str(exc)) from None
    frame = source.points
    if frame.empty:
        raise ForecastFileError(f"{path.name}: no rows to forecast")
    if freq is None:
        try:
            freq = infer_freq(frame)
        except ValueError as exc:
            raise ForecastFileError(f"{path.name}: {exc}; give --freq") from None
    else:
        try:
            pd.tseries.frequencies.to_offset(freq)
        except ValueError:
            raise ForecastFileError(
                f"--freq {freq!r} is not a pandas frequency alias (e.g. h, 5min, D)"
            ) from None
    return ForecastInput(frame, freq, source.repeats.warning())


def forecast_input(
    source: ForecastInput,
    horizon: int,
    levels: Sequence[int],
    model: str,
    n_jobs: int = 1,
    timegpt: TimeGPTOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> ForecastOutput:
    """Forecast ``source`` with ``model``: ``auto``, a statsforecast model, ``Prophet`` or ``TimeGPT``.

    ``bounds`` (lower, upper) are the metric's physical limits; forecasts and bands are clipped to them.
    """
    if model not in MODEL_CHOICES:
        raise ForecastFileError(f"--model {model!r} is not one of {', '.join(MODEL_CHOICES)}")
    backend = BACKEND_MODELS.get(model, "statsforecast")
    if backend == "timegpt" and timegpt is None:
        raise ForecastFileError("--model TimeGPT needs the NIXTLA_API_KEY environment variable")
    regular = current_regime(
        fill_missing_steps(source.frame, source.freq).drop(columns="filled"), season_lengths(source.freq)
    )
    run = run_backend(
        regular,
        ForecastSpec(horizon, source.freq, tuple(levels), *bounds, n_jobs=n_jobs),
        backend=backend,
        model=model if backend == "statsforecast" else "auto",
        timegpt=timegpt,
        on_progress=on_progress,
    )
    models = run.forecasts.drop_duplicates("unique_id")["model"].value_counts().sort_index()
    return ForecastOutput(
        run.forecasts,
        source.series,
        source.freq,
        {str(k): int(v) for k, v in models.items()},
        run.fallback_reason,
    )


def progress_steps(source: ForecastInput, model: str) -> int:
    """Units of work ``on_progress`` reports: series backtested (statsforecast only) plus series fitted."""
    return source.series * (1 if model in BACKEND_MODELS else 2)
