from collections.abc import Iterator

import duckdb
import pytest

from tests.alerting.support import CHANNELS, TOKEN
from tests.support.slack_standin import SlackStandIn


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory DuckDB: the alert tables are created by the code under test."""
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """The loopback Slack stand-in, knowing the alerting tests' channels."""
    with SlackStandIn(token=TOKEN, channels=CHANNELS) as standin:
        yield standin
