"""Undo a request's ``Content-Encoding`` without ever inflating past the body limit (a zip bomb is a 413)."""

from __future__ import annotations

import zlib

import cramjam
import zstandard

from intentvision_dagster.api.protocols.columns import PayloadError


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, zstd, snappy block format), never past ``max_bytes``."""
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding in ("identity", ""):
            return body
        if encoding in ("gzip", "deflate"):
            # wbits 47 = gzip or zlib header auto-detected; Datadog's deflate is zlib-wrapped.
            inflater = zlib.decompressobj(47)
            data = inflater.decompress(body, max_bytes + 1)
            if len(data) > max_bytes or inflater.unconsumed_tail:
                raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
            if not inflater.eof:
                raise PayloadError(f"the {encoding} body is truncated")
            return data
        if encoding == "snappy":
            if cramjam.snappy.decompress_raw_len(body) > max_bytes:
                raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
            return bytes(cramjam.snappy.decompress_raw(body))
        if encoding in ("zstd", "zstd1"):  # datadog-api-client says zstd1
            chunks, size = [], 0
            with zstandard.ZstdDecompressor().stream_reader(body) as reader:
                while chunk := reader.read(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
                    chunks.append(chunk)
            return b"".join(chunks)
    except (zlib.error, cramjam.DecompressionError, zstandard.ZstdError) as exc:
        raise PayloadError(f"the body is not valid {encoding} data: {exc}") from None
    raise PayloadError(
        f"unsupported Content-Encoding {encoding!r}; use gzip, deflate, zstd or snappy", status=415
    )
