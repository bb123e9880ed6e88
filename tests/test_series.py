"""Series identity: labels parsed from every accepted spelling into one canonical form."""

import pandas as pd
import pytest

from intentvision_dagster.series import canonical_labels, counter_increase, parse_labels, unique_id


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("host=web-1,env=prod", {"host": "web-1", "env": "prod"}),
        ('host="web-1", env="prod"', {"host": "web-1", "env": "prod"}),
        ('path="/a,b",quote="say \\"hi\\""', {"path": "/a,b", "quote": 'say "hi"'}),
        ('{"host": "web-1", "zone": "eu"}', {"host": "web-1", "zone": "eu"}),
        ("", {}),
        (None, {}),
    ],
)
def test_every_label_spelling_parses(cell, expected):
    assert parse_labels(cell) == expected


def test_canonical_form_round_trips_through_the_parser():
    labels = {"path": "/a,b", "quote": 'say "hi"', "host": "web-1"}
    canonical = canonical_labels(labels)
    assert canonical == 'host="web-1",path="/a,b",quote="say \\"hi\\""'
    assert parse_labels(canonical) == labels
    assert unique_id("acme", "disk_used", canonical) == f"acme/disk_used{{{canonical}}}"


@pytest.mark.parametrize("cell", ["host", "host=web-1,,env=x", "=x", 'a="unterminated'])
def test_malformed_labels_are_refused_with_the_cell(cell):
    with pytest.raises(ValueError, match="labels"):
        parse_labels(cell)


def test_a_counter_becomes_its_per_step_increase_and_a_reset_is_a_restart():
    frame = pd.DataFrame(
        {
            "unique_id": ["a"] * 5 + ["b"] * 2,
            "ds": list(pd.date_range("2026-01-01", periods=5, freq="h")) * 1
            + list(pd.date_range("2026-01-01", periods=2, freq="h")),
            "y": [100.0, 110.0, 125.0, 5.0, 20.0, 7.0, 7.0],
        }
    )
    increase = counter_increase(frame)
    assert increase["unique_id"].tolist() == ["a"] * 4 + ["b"]
    assert increase["y"].tolist() == [10.0, 15.0, 5.0, 15.0, 0.0]
    assert increase["ds"].iloc[0] == pd.Timestamp("2026-01-01 01:00")
