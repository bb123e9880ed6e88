"""The model registry: which tier a history gets, and the MSTL speed-ups."""

import pytest

from intentvision_dagster.forecasting.models import choose_tier, stl_jumps


@pytest.mark.parametrize(
    ("n_points", "seasons", "tier"),
    [
        (48, [24, 168], ("AutoETS_short", ())),
        (49, [24, 168], ("MSTL", (24,))),
        (24 * 7 * 3, [24, 168], ("MSTL", (24,))),
        (24 * 7 * 3 + 1, [24, 168], ("MSTL", (24, 168))),
        (9, [24, 168], ("Naive", ())),
        (200, [], ("AutoETS", ())),
        (15, [7], ("MSTL", (7,))),
    ],
)
def test_choose_tier(n_points: int, seasons: list[int], tier: tuple) -> None:
    assert choose_tier(n_points, seasons) == tier


def test_stl_jumps_follow_r_defaults() -> None:
    assert stl_jumps(24) == {"seasonal_jump": 2, "trend_jump": 5, "low_pass_jump": 3}
    assert stl_jumps(288) == {"seasonal_jump": 2, "trend_jump": 51, "low_pass_jump": 29}
