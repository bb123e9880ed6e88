"""The HTTP API: ingest (JSON, Prometheus remote_write, Datadog series), tenant-scoped reads, keys, audit."""
