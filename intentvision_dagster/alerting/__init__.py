"""Alerting in Alertmanager's separate parts: rules (``rules``, one class per kind in ``kinds``, validation in
``config``), evaluate (what fires), log (what is new, open or resolved), dispatch (``routing``, ``silences``,
``inhibition``, grouping) and notify (``layout`` for Slack's blocks, ``delivery`` for sending them or the
local outbox). Pure modules; only ``defs`` (the sensors) and ``resources`` import Dagster.
"""
