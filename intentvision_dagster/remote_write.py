"""Prometheus remote_write 1.0 bodies: a snappy-compressed ``WriteRequest``, as Prometheus sends them.

Shared by the ingest API's tests and benchmarks (which send such bodies) and the Prometheus export (which
writes forecasts and anomaly scores to a Prometheus-compatible receiver).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import cramjam

from intentvision_dagster.remote_write_pb2 import WriteRequest

REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
"""The headers the remote_write 1.0 specification requires of a sender."""

Series = tuple[Mapping[str, str], Sequence[tuple[float, int]]]
"""One time series: its labels including ``__name__``, and its ``(value, timestamp in ms)`` samples."""


def write_request_body(series: Iterable[Series]) -> bytes:
    """The snappy-compressed (block format) ``WriteRequest`` of ``series``, labels sorted by name as the
    specification requires."""
    request = WriteRequest()
    for labels, samples in series:
        timeseries = request.timeseries.add()
        for name in sorted(labels):
            timeseries.labels.add(name=name, value=labels[name])
        for value, stamp in samples:
            timeseries.samples.add(value=value, timestamp=stamp)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
