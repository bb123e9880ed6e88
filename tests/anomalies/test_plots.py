"""The anomaly chart: the series with the strongest anomalies, in the metric's unit over UTC, as a PNG."""

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.anomalies.plots import anomaly_figure, anomaly_plot_png
from intentvision_dagster.plotting import series_title
from tests.forecasting.factories import seasonal_frame
from tests.forecasting.test_plots import PNG_SIGNATURE


def test_anomaly_plot_is_a_png_of_the_series_with_the_strongest_anomalies() -> None:
    history = seasonal_frame(n_series=3)
    spiked = history["unique_id"] == history["unique_id"].iloc[-1]
    history.loc[spiked & (history.index == history[spiked].index[-5]), "y"] += 500
    scored = detect(history, season_length=24)
    assert scored.loc[scored["is_anomaly"], "unique_id"].unique().tolist() == [history["unique_id"].iloc[-1]]
    fig = anomaly_figure(scored, unit="%", max_series=1)
    assert [ax.get_title() for ax in fig.axes] == [series_title(history["unique_id"].iloc[-1])]
    assert (fig.axes[0].get_ylabel(), fig.axes[0].get_xlabel()) == ("%", "time (UTC)")
    assert "critical" in [text.get_text() for text in fig.legends[0].get_texts()]
    png = anomaly_plot_png(scored, max_series=1)
    assert png.startswith(PNG_SIGNATURE)
    assert anomaly_plot_png(scored.iloc[:0]).startswith(PNG_SIGNATURE)
