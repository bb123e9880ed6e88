"""Pure forecasting core: the engine (tiers, candidates, selection by backtest, calibrated intervals), its
Prophet/TimeGPT backends, gap filling, plots.

Everything here takes and returns Nixtla long frames (``unique_id, ds, y``) and never imports Dagster;
``defs.py`` holds the domain's assets and schedule.
"""
