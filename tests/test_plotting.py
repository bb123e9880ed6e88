"""Shared chart pieces: panel titles name the series' labels."""

import pytest

from intentvision_dagster.plotting import series_title


@pytest.mark.parametrize(
    ("uid", "title"),
    [
        ('acme/node_cpu{host="web-1",mode="idle"}', 'host="web-1",mode="idle"'),
        ("acme/node_cpu", "acme/node_cpu"),
        ("acme/node_cpu{}", "acme/node_cpu{}"),
    ],
)
def test_series_title(uid: str, title: str) -> None:
    assert series_title(uid) == title
