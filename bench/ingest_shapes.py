"""Ingest validation cost by request shape: does decoding stay linear when every item repeats one series?

Decodes (no HTTP, no landing) a JSON ``/v1/ingest`` body and a remote_write body of N and 2N one-sample items,
either all of one series ("repeated") or each of its own series ("distinct"), and prints the seconds for each
and the ratio 2N/N measured in the same run: about 2 is linear, 4 quadratic, 8 cubic.

    .venv/bin/python bench/ingest_shapes.py --items 2000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from intentvision_dagster.api.protocols.columns import Columns, Limits
from intentvision_dagster.api.protocols.remote_write import decode_remote_write
from intentvision_dagster.api.protocols.webhook import decode_json
from intentvision_dagster.remote_write_pb2 import WriteRequest
from intentvision_dagster.settings import load_settings


def json_payload(items: int, repeated: bool, start_s: int) -> bytes:
    series = [
        {
            "metric": "node_cpu",
            "labels": {"host": "web-1" if repeated else f"web-{i}"},
            "points": [{"timestamp": start_s + i, "value": 1.0}],
        }
        for i in range(items)
    ]
    return json.dumps({"series": series}).encode()


def remote_write_payload(items: int, repeated: bool, start_s: int) -> bytes:
    request = WriteRequest()
    for i in range(items):
        series = request.timeseries.add()
        series.labels.add(name="__name__", value="node_cpu")
        series.labels.add(name="host", value="web-1" if repeated else f"web-{i}")
        series.samples.add(timestamp=(start_s + i) * 1000, value=1.0)
    return request.SerializeToString()


Decoder = Callable[[bytes, str, Limits], Columns]


def seconds(decoder: Decoder, data: bytes, limits: Limits, items: int) -> float:
    started = time.perf_counter()
    columns = decoder(data, "bench", limits)
    elapsed = time.perf_counter() - started
    if len(columns.value) != items or columns.problems:  # a fast wrong answer is no result
        raise SystemExit(f"decoded {len(columns.value)} of {items} samples, problems: {columns.problems[:3]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2000, help="N (the run also measures 2N)")
    args = parser.parse_args()
    now = datetime.now(UTC)
    start_s = int(now.timestamp()) - 4 * args.items
    limits = Limits.for_settings(replace(load_settings(), api_max_points=10 * args.items), now)
    formats = {
        "json": (decode_json, json_payload),
        "remote_write": (decode_remote_write, remote_write_payload),
    }
    for name, (decoder, payload) in formats.items():
        for repeated in (True, False):
            small, large = (
                seconds(decoder, payload(n, repeated, start_s), limits, n)
                for n in (args.items, 2 * args.items)
            )
            shape = "repeated" if repeated else "distinct"
            print(
                f"{name:12} {shape:8} N={args.items}: {small:.3f} s  2N: {large:.3f} s  "
                f"ratio {large / small:.2f}"
            )


if __name__ == "__main__":
    main()
