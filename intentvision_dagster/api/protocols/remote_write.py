"""Prometheus remote_write 1.0: a (snappy-decoded) protobuf ``WriteRequest``, as Prometheus sends it."""

from __future__ import annotations

import struct

from google.protobuf.message import DecodeError

from intentvision_dagster.api.protocols.columns import ColumnBuilder, Columns, Limits, PayloadError
from intentvision_dagster.remote_write_pb2 import WriteRequest

PROMETHEUS_STALE_NAN = 0x7FF0000000000002
"""The NaN bit pattern Prometheus writes as a staleness marker: the series ended, not a sample."""


def decode_remote_write(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Prometheus remote_write 1.0 ``WriteRequest`` (already snappy-decoded). The metric is ``__name__``;
    staleness markers are skipped (counted in ``stale_markers``); other NaN/inf samples are stored, as
    Prometheus itself does, and quarantined by validation with a reason."""
    request = WriteRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise PayloadError(
            f"the body is not a Prometheus remote_write WriteRequest protobuf: {exc}"
        ) from None
    builder = ColumnBuilder(tenant, limits, "timeseries", points_field="samples")
    stale = 0
    for index, series in enumerate(request.timeseries):
        metric = ""
        labels = []
        for label in series.labels:
            if label.name == "__name__":
                metric = label.value
            else:
                labels.append((label.name, label.value))
        samples = series.samples
        stamps = [sample.timestamp for sample in samples]
        values = [sample.value for sample in samples]
        if any(value != value for value in values):  # NaN: drop staleness markers, keep other NaN
            keep = [i for i, value in enumerate(values) if not _is_stale_marker(value)]
            stale += len(values) - len(keep)
            stamps, values = [stamps[i] for i in keep], [values[i] for i in keep]
        if not stamps:  # only staleness markers, or no float samples at all (a native histogram)
            builder.out.items += 1
            continue
        builder.add_item(
            index,
            metric,
            tuple(labels),
            stamps,
            values,
            lambda i, stamps=stamps, values=values: (stamps[i], values[i]),
            "labels.__name__",
        )
    builder.out.stale_markers = stale
    return builder.out


def _is_stale_marker(value: float) -> bool:
    return value != value and struct.unpack("<Q", struct.pack("<d", value))[0] == PROMETHEUS_STALE_NAN
