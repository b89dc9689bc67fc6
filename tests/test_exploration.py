import numpy as np
import pytest

from algorithms.exploration import FINAL_EPSILONS, epsilon, sample_final_epsilons


def test_epsilon_schedule():
    assert epsilon(0, 0.1, 1000) == 1.0
    assert epsilon(500, 0.1, 1000) == pytest.approx(0.55)
    assert epsilon(1000, 0.1, 1000) == pytest.approx(0.1)
    assert epsilon(10**9, 0.01, 1000) == pytest.approx(0.01)
    assert epsilon(250, 0.5, 1000) == pytest.approx(0.875)


def test_final_epsilons_follow_the_papers_distribution():
    draws = np.array(sample_final_epsilons(np.random.default_rng(0), 30_000))
    assert set(np.unique(draws)) == set(FINAL_EPSILONS)
    for value, probability in zip((0.1, 0.01, 0.5), (0.4, 0.3, 0.3)):
        assert np.mean(draws == value) == pytest.approx(probability, abs=0.015)


def test_final_epsilons_are_reproducible():
    a = sample_final_epsilons(np.random.default_rng(5), 16)
    b = sample_final_epsilons(np.random.default_rng(5), 16)
    assert a == b and len(a) == 16
