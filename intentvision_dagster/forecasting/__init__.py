"""Pure forecasting core: candidate models by tier, selection by backtest, calibrated intervals, the
Prophet/TimeGPT backends, gap filling, plots.

Everything here takes and returns Nixtla long frames (``unique_id, ds, y``) plus one
:class:`~.spec.ForecastSpec`, and never imports Dagster; ``defs.py`` holds the domain's assets and schedule
and ``resources.py`` its resource. Each module imports only modules below it, so there is no cycle to dodge:

``spec`` (the request and frame contract) <- ``models`` (the registry of candidates) <- ``backtest`` <-
``selection`` <- ``forecast`` <- ``backends`` <- ``files``, ``defs``, ``resources``; ``workers`` (the
process pool ``backtest`` and ``forecast`` fit on) imports none of them.
"""
