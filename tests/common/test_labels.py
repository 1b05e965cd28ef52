"""Bounded metric labels: model ids past the cap share one 'other' series."""

from __future__ import annotations

from services.common.labels import OTHER, BoundedLabels


def test_values_past_the_cap_become_other_and_known_ones_stay() -> None:
    labels = BoundedLabels(cap=3)
    assert [labels(f"m{i}/1") for i in range(5)] == ["m0/1", "m1/1", "m2/1", OTHER, OTHER]
    assert labels("m1/1") == "m1/1"  # seen before the cap was reached
    labels.configure(4)
    assert labels("m9/1") == "m9/1" and labels("m10/1") == OTHER
