"""Ingest protocols: decode and validate a request body into landing columns, one module per wire format.

Every protocol module offers ``decode_<protocol>(data, tenant, limits) -> Columns`` over an already
decompressed body (:mod:`.encoding`); the shared rules live in :mod:`.columns`. Pure functions, no HTTP and
no Dagster. Every problem is reported per item (a JSON ``series`` entry, a remote_write ``timeseries``
entry) with the field path and the offending value, e.g. ``series[3].points[0].value: 'abc' is not a
number``. The caller refuses the whole request when any item is invalid, unless the client asked for partial
acceptance; then only the valid items are kept and the report says which items were rejected and why.
"""
