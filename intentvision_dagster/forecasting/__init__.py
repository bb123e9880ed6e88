"""Pure forecasting core: frequency inference, tiered StatsForecast models, rolling-origin backtests, plots.

Everything here takes and returns Nixtla long frames (``unique_id, ds, y``) and never imports Dagster.
"""
