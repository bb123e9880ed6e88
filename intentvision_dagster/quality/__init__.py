"""Data quality: pandera schema, quarantine of bad rows, Great Expectations suite (pure logic, no Dagster)."""
