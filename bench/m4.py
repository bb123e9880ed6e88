"""M4 Hourly accuracy benchmark: our engine vs seasonal naive, statsforecast AutoETS and Prophet, in one run.

    python bench/m4.py [--data ../shared/data/m4-hourly] [--prophet-sample 40] [--jobs 2] [--series N]

414 series, horizon 48, seasonal period 24, synthetic hourly timestamps (M4 gives no dates). Scores as M4
defines them: sMAPE on the 0-200 scale, MASE (m = 24), OWA against the published Naive2 figures, 95%
coverage and MSIS (95% interval score scaled like MASE); wall time and series/s. Prophet (defaults, one
series at a time) runs on a fixed sample of ``--prophet-sample`` series right after ours, under the same
load: its speed is timed there and its accuracy is compared with ours on the same sample. Results go to
``bench/results/m4-<timestamp>.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import pandas as pd
from prophet import Prophet
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, SeasonalNaive
from utilsforecast.evaluation import evaluate
from utilsforecast.losses import coverage, mae, mase, smape, winkler_score

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.selection import bucket_label, select_models, step_buckets
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.forecasting.workers import worker_pool

ROOT = Path(__file__).resolve().parents[1]
HORIZON, SEASON, LEVEL = 48, 24, 95
NAIVE2 = {"smape": 18.383, "mase": 2.395}
"""Published M4 Hourly Naive2 scores (shared/data/m4-hourly/RESULTS.md, section 2): OWA's reference."""


def load_m4(folder: Path, n_series: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test long frames; each series starts 2000-01-01 00:00 and is hourly."""
    frames = []
    for name in ("Hourly-train.csv", "Hourly-test.csv"):
        wide = pd.read_csv(folder / name, index_col=0)
        if n_series:
            wide = wide.iloc[:n_series]
        long = wide.stack().rename("y").reset_index()
        long.columns = ["unique_id", "step", "y"]
        long["step"] = long.groupby("unique_id").cumcount()
        frames.append(long)
    train, test = frames
    test["step"] += test["unique_id"].map(train.groupby("unique_id").size())
    for frame in (train, test):
        frame["ds"] = pd.Timestamp("2000-01-01") + pd.to_timedelta(frame.pop("step"), unit="h")
    return train[["unique_id", "ds", "y"]], test[["unique_id", "ds", "y"]]


def scores_per_series(fc: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """sMAPE (0-200), MASE, 95% coverage and MSIS per series; ``fc`` has ``yhat, lo_95, hi_95``."""
    frame = test.merge(fc[["unique_id", "ds", "yhat", f"lo_{LEVEL}", f"hi_{LEVEL}"]], on=["unique_id", "ds"])
    frame = frame.rename(
        columns={"yhat": "m", f"lo_{LEVEL}": f"m-lo-{LEVEL}", f"hi_{LEVEL}": f"m-hi-{LEVEL}"}
    )
    train = train[train["unique_id"].isin(frame["unique_id"])]
    scored = evaluate(
        frame,
        metrics=[smape, mae, partial(mase, seasonality=SEASON), coverage, winkler_score],
        models=["m"],
        train_df=train,
        level=[LEVEL],
    )
    wide = scored.pivot(index="unique_id", columns="metric", values="m")
    return pd.DataFrame(
        {
            "smape": 200 * wide["smape"],  # utilsforecast's sMAPE is half of M4's 0-200 scale
            "mase": wide["mase"],
            "coverage_95": wide[f"coverage_level{LEVEL}"],
            # MSIS: the interval score divided by the in-sample seasonal-naive MAE, MASE's own scale
            "msis": wide[f"winkler_score_level{LEVEL}"] / (wide["mae"] / wide["mase"]),
        }
    )


def coverage_by_horizon(fc: pd.DataFrame, test: pd.DataFrame) -> str:
    """Test-set coverage of the 80 % and 95 % intervals per horizon bucket (the buckets calibrated apart)."""
    frame = test.merge(fc, on=["unique_id", "ds"]).sort_values(["unique_id", "ds"])
    frame["bucket"] = step_buckets(frame.groupby("unique_id").cumcount().to_numpy() + 1, HORIZON)
    cells = []
    for bucket, rows in frame.groupby("bucket"):
        shares = [
            ((rows["y"] >= rows[f"lo_{lv}"]) & (rows["y"] <= rows[f"hi_{lv}"])).mean() for lv in (80, 95)
        ]
        cells.append(f"{bucket_label(int(bucket), HORIZON)}: {shares[0]:.3f} / {shares[1]:.3f}")
    return "Coverage 80 % / 95 % of ours by horizon bucket (test set): " + "; ".join(cells) + "."


def summary(name: str, per_series: pd.DataFrame, seconds: float, n_series: int) -> dict:
    means = per_series.mean()
    owa = (means["smape"] / NAIVE2["smape"] + means["mase"] / NAIVE2["mase"]) / 2
    return {
        "method": name,
        "series": n_series,
        "smape": means["smape"],
        "mase": means["mase"],
        "owa": owa,
        "coverage_95": means["coverage_95"],
        "msis": means["msis"],
        "seconds": seconds,
        "series_per_s": n_series / seconds,
    }


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def statsforecast_baseline(model, train: pd.DataFrame, jobs: int) -> pd.DataFrame:
    out = StatsForecast(models=[model], freq="h", n_jobs=jobs).forecast(df=train, h=HORIZON, level=[LEVEL])
    name = model.alias
    return out.rename(columns={name: "yhat", f"{name}-lo-{LEVEL}": "lo_95", f"{name}-hi-{LEVEL}": "hi_95"})


def prophet_forecasts(train: pd.DataFrame) -> pd.DataFrame:
    """Prophet with defaults (95% interval), fitted and predicted one series at a time."""
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    parts = []
    for uid, history in train.groupby("unique_id", sort=True):
        model = Prophet(interval_width=LEVEL / 100).fit(history[["ds", "y"]])
        future = model.make_future_dataframe(periods=HORIZON, freq="h", include_history=False)
        out = model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]
        parts.append(out.rename(columns={"yhat_lower": "lo_95", "yhat_upper": "hi_95"}).assign(unique_id=uid))
    return pd.concat(parts, ignore_index=True)


def markdown(rows: list[dict], accuracy_reference: dict, speed_reference: dict) -> str:
    """One row per method; MASE relative to ``accuracy_reference``, series/s to ``speed_reference``."""
    header = (
        "| method | series | sMAPE | MASE | OWA | coverage 95 | MSIS | seconds | series/s "
        f"| MASE / {accuracy_reference['method']} | series/s / {speed_reference['method']} |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in rows:
        cells = [
            row["method"],
            str(row["series"]),
            *(f"{row[name]:.3f}" for name in ("smape", "mase", "owa", "coverage_95", "msis")),
            f"{row['seconds']:.1f}",
            f"{row['series_per_s']:.1f}",
            f"{row['mase'] / accuracy_reference['mase']:.3f}",
            f"{row['series_per_s'] / speed_reference['series_per_s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "m4-hourly")
    parser.add_argument("--prophet-sample", type=int, default=40, help="series Prophet is run on")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the statsforecast models")
    parser.add_argument("--series", type=int, default=None, help="only the first N series (quick runs)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if not (args.data / "Hourly-train.csv").exists():
        sys.exit(f"M4 Hourly data not found in {args.data} (expected Hourly-train.csv and Hourly-test.csv)")
    train, test = load_m4(args.data, args.series)
    n = train["unique_id"].nunique()
    print(f"M4 Hourly: {n} series, horizon {HORIZON}, season {SEASON}, {args.jobs} worker process(es)")

    spec = ForecastSpec(HORIZON, "h", levels=(80, LEVEL), n_jobs=args.jobs)
    with worker_pool():  # one pool for both calls, as a pipeline step keeps one for its partitions
        selection, select_s = timed(lambda: select_models(train, spec))
        ours, refit_s = timed(lambda: forecast(train, spec, selection=selection))
    print(f"ours: selection {select_s:.1f} s, forecast with the stored selection {refit_s:.1f} s")
    ours_scores = scores_per_series(ours, test, train)
    # Prophet right after ours, so both are timed under the same load on a shared machine.
    ids = sorted(train["unique_id"].unique())[:: max(1, n // args.prophet_sample)][: args.prophet_sample]
    sample = train[train["unique_id"].isin(ids)]
    prophet, prophet_s = timed(lambda: prophet_forecasts(sample))
    print(f"Prophet on {len(ids)} series: {prophet_s:.1f} s")
    snaive, snaive_s = timed(lambda: statsforecast_baseline(SeasonalNaive(SEASON), train, args.jobs))
    ets, ets_s = timed(lambda: statsforecast_baseline(AutoETS(season_length=SEASON), train, args.jobs))
    print(f"seasonal naive {snaive_s:.1f} s, AutoETS {ets_s:.1f} s")
    snaive_row = summary("SeasonalNaive", scores_per_series(snaive, test, train), snaive_s, n)
    prophet_row = summary(
        f"Prophet (defaults; {len(ids)}-series sample)",
        scores_per_series(prophet, test, sample),
        prophet_s,
        len(ids),
    )
    rows = [
        summary("intentvision (select + forecast)", ours_scores, select_s + refit_s, n),
        summary("intentvision (nightly refit of stored selection)", ours_scores, refit_s, n),
        summary("intentvision (refit + a seventh of the selection)", ours_scores, refit_s + select_s / 7, n),
        snaive_row,
        summary("statsforecast AutoETS(24)", scores_per_series(ets, test, train), ets_s, n),
        prophet_row,
    ]
    per_series_s = (select_s + refit_s) / n
    sample_rows = [
        summary("intentvision (select + forecast)", ours_scores.loc[ids], per_series_s * len(ids), len(ids)),
        prophet_row,
    ]
    by_model = selection["model"].value_counts().to_dict()
    report = [
        f"# M4 Hourly, {n} series (`python bench/m4.py`, {args.jobs} worker processes)",
        "",
        f"OWA uses the published Naive2 sMAPE {NAIVE2['smape']} / MASE {NAIVE2['mase']}. "
        f"Winners of the selection: {by_model}. Prophet (defaults, one series at a time, one process) "
        f"runs on every {max(1, n // args.prophet_sample)}th series, timed right after ours.",
        "",
        markdown(rows, snaive_row, prophet_row),
        "",
        coverage_by_horizon(ours, test),
        "",
        "The same comparison on Prophet's sample only (ours: the full run's scores on those series, "
        "time pro rata):",
        "",
        markdown(sample_rows, prophet_row, prophet_row),
    ]
    text = "\n".join(report)
    print(text)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"m4-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}.md"
    path.write_text(text + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
