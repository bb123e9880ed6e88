"""Getting metric data in: user files and Prometheus pulls, landed durably (pure logic, no Dagster outside
``defs.py``)."""
