"""Series identity: labels parsed from every accepted spelling into one canonical form."""

import pytest

from intentvision_dagster.series import canonical_labels, parse_labels, unique_id


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
