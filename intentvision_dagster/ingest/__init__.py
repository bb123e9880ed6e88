"""Getting metric data in: user files and the durable landing area (pure logic, no Dagster)."""
