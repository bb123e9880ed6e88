"""Alerting in Alertmanager's separate parts: rules (what to watch), evaluate (what fires), log (what is new,
open or resolved) and delivery (Slack or the local outbox). Pure functions; the sensor lives in defs.py.
"""
