"""The report's arithmetic: first reach, AULC, bootstrap savings."""

import numpy as np
import pytest

from labelwise_simulate.report import aulc, bootstrap_saving, first_reach


def test_first_reach_and_aulc() -> None:
    labels, accuracy = [4, 14, 24], [0.5, 0.8, 0.9]
    assert first_reach(labels, accuracy, 0.8) == 14
    assert first_reach(labels, accuracy, 0.95) is None
    # Trapezoids: (0.65 * 10 + 0.85 * 10) / 20.
    assert aulc(np.array(labels, float), np.array(accuracy)) == pytest.approx(0.75)


def test_bootstrap_saving_is_zero_for_equal_runs_and_brackets_its_estimate() -> None:
    rng = np.random.default_rng(0)
    same = bootstrap_saving(np.array([50.0, 60, 70]), np.array([50.0, 60, 70]), rng, False)
    assert same.percent == pytest.approx(0) and same.low <= 0 <= same.high
    half = bootstrap_saving(np.array([40.0, 50, 60]), np.array([100.0, 90, 110]), rng, False)
    assert half.percent == pytest.approx(50)
    assert half.low <= half.percent <= half.high and half.low > 0
