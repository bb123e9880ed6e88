"""An S3-compatible object store on a loopback port: moto's server in its own process, with one bucket."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import requests

from tests.support.api_server import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
"""What moto accepts (any key): the ``AWS_*`` settings a test passes to the product."""


@contextmanager
def s3_server(log_dir: Path, bucket: str = "lake") -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1, create ``bucket``, yield the endpoint URL; stop it after."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (log_dir / "moto.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (log_dir / "moto.log").read_text()
                    raise RuntimeError(f"moto server did not start: {log_text}") from exc
                time.sleep(0.1)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        ).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
