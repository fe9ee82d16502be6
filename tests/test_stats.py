"""Hand-computed checks for beyond_vibes.stats."""

import pytest

from beyond_vibes.stats import (
    Flips,
    Thresholds,
    accuracy_drop,
    bootstrap_interval,
    decision,
    flip_counts,
    mcnemar_p,
    paired_difference,
    pass_at_k,
    wilson_interval,
)


def test_wilson_8_of_10():
    # p = 0.8, n = 10, z = 1.959964, z² = 3.841459
    # denom  = 1 + z²/n = 1.3841459
    # center = (0.8 + z²/20) / denom = (0.8 + 0.1920729) / 1.3841459 = 0.7167382
    # half   = z * sqrt(0.8*0.2/10 + z²/400) / denom
    #        = 1.959964 * sqrt(0.016 + 0.0096036) / 1.3841459 = 1.959964 * 0.1600114 / 1.3841459 = 0.2265760
    # -> (0.4902, 0.9433)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=5e-5)
    assert high == pytest.approx(0.9433, abs=5e-5)


def test_wilson_0_of_10():
    # p = 0: center = (z²/20)/denom = 0.1920729/1.3841459 = 0.138767
    #        half   = z*sqrt(z²/400)/denom = z²/20/denom = 0.138767 -> (0, 0.2775)
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.2775, abs=5e-5)


def test_wilson_errors():
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence=1.0)


def test_bootstrap_constant_and_half():
    assert bootstrap_interval([0.7] * 20) == pytest.approx((0.7, 0.7))
    low, high = bootstrap_interval([0.0, 1.0] * 50)
    # mean 0.5, SE = 0.5/sqrt(100) = 0.05 -> roughly 0.5 ± 0.098
    assert low < 0.5 < high
    assert 0.3 < low and high < 0.7
    assert bootstrap_interval([0.0, 1.0] * 50, seed=3) == bootstrap_interval([0.0, 1.0] * 50, seed=3)


def test_bootstrap_errors():
    with pytest.raises(ValueError):
        bootstrap_interval([])


def test_pass_at_k():
    # n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 11/12
    assert pass_at_k(10, 3, 5) == pytest.approx(11 / 12)
    # no correct samples -> 0; n-c < k (every k-subset holds a correct one) -> 1
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0
    # large n stays finite: n=1000, c=1, k=1 -> 1/1000
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)


def test_pass_at_k_errors():
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_flip_counts():
    baseline = {"a": True, "b": True, "c": False, "d": False, "e": True, "only_base": True}
    candidate = {"a": True, "b": False, "c": True, "d": False, "e": False, "only_cand": False}
    # paired: a (pass,pass) b (pass,fail) c (fail,pass) d (fail,fail) e (pass,fail)
    flips = flip_counts(baseline, candidate)
    assert flips == Flips(both_pass=1, both_fail=1, lost=2, gained=1)
    assert flips.n == 5
    assert flips.flip_rate == pytest.approx(3 / 5)
    assert flip_counts({}, {"x": True}).flip_rate is None


def test_mcnemar():
    # lost=1, gained=6: 2 * P(X<=1 | n=7, p=.5) = 2 * (1 + 7)/128 = 0.125
    assert mcnemar_p(Flips(both_pass=10, both_fail=3, lost=1, gained=6)) == pytest.approx(0.125)
    # lost=2, gained=8: 2 * (1 + 10 + 45)/1024 = 112/1024 = 0.109375
    assert mcnemar_p(Flips(0, 0, 2, 8)) == pytest.approx(0.109375)
    # lost=0, gained=5: 2 * 1/32 = 0.0625
    assert mcnemar_p(Flips(0, 0, 0, 5)) == pytest.approx(0.0625)
    # balanced discordants and no discordants -> 1.0
    assert mcnemar_p(Flips(0, 0, 3, 3)) == pytest.approx(1.0)
    assert mcnemar_p(Flips(4, 2, 0, 0)) == 1.0


def test_decision_boundaries():
    assert decision(-2.0) == "ship"
    assert decision(0.99) == "ship"
    assert decision(1.0) == "acceptable"
    assert decision(3.0) == "marginal"
    assert decision(5.0) == "marginal"
    assert decision(5.01) == "too high"
    assert decision(1.5, Thresholds(ship=2.0)) == "ship"


def test_accuracy_drop():
    # (0.80 - 0.77) * 100 = 3.0 points
    assert accuracy_drop(0.80, 0.77) == pytest.approx(3.0)
    # improvement is negative: (0.70 - 0.72) * 100 = -2.0
    assert accuracy_drop(0.70, 0.72) == pytest.approx(-2.0)
    assert decision(accuracy_drop(0.80, 0.77)) == "marginal"


def test_pass_rate_interval_is_clustered_by_task_when_tasks_repeat():
    from beyond_vibes.stats import CLUSTER, WILSON, pass_rate_interval

    # 4 tasks x 3 repeats, passes 3, 2, 1, 3: p = 0.75; residuals 0.75, -0.25, -1.25, 0.75 -> sum of squares 2.75;
    # SE = sqrt(4/3 · 2.75)/12 = 0.159571; t(0.975, 3 df) = 3.182446 -> half 0.507826 -> [0.242174, 1 (clipped)].
    low, high, method = pass_rate_interval({"a": [1, 1, 1], "b": [1, 1, 0], "c": [1, 0, 0], "d": [1, 1, 1]})
    assert (round(low, 5), high, method) == (0.24217, 1.0, CLUSTER)
    # One run per task: independent trials, Wilson (hand value of 2/3 as above).
    low, high, method = pass_rate_interval({"a": [1], "b": [0], "c": [1]})
    assert method == WILSON and (low, high) == pytest.approx(wilson_interval(2, 3))
    # A model that always solves one task and never the other is not narrowly 50%: ten repeats each, [0, 1].
    assert pass_rate_interval({"a": [1] * 10, "b": [0] * 10})[:2] == (0.0, 1.0)


def test_paired_difference_by_task():
    # Three tasks x 5 repeats: per-task differences 0, 1, 0 -> mean 1/3, sd = sqrt(((1/3)² · 2 + (2/3)²) / 2) = 0.57735,
    # SE = 0.57735 / sqrt(3) = 0.33333, t(0.975, 2) = 4.30265 -> ±1.43422: [-1.10, 1.77] clipped to [-1, 1].
    a = {"t1": [True] * 5, "t2": [True] * 5, "t3": [False] * 5}
    b = {"t1": [True] * 5, "t2": [False] * 5, "t3": [False] * 5}
    d = paired_difference(a, b)
    assert (d.mean, d.low, d.high, d.tasks, d.method) == (pytest.approx(1 / 3), -1.0, 1.0, 3, "paired by task")
    # Twenty tasks, one run each, A always and B never: every task says +1, sd 0; that is not certainty, so the
    # floor is Newcombe's from the two Wilson intervals: Wilson(20/20) low = 0.838876, Wilson(0/20) high = 0.161124
    # -> low = 1 - sqrt(0.161124² + 0.161124²) = 1 - 0.227863 = 0.772137; high = 1.
    always = {f"t{i}": [True] for i in range(20)}
    never = {f"t{i}": [False] for i in range(20)}
    d = paired_difference(always, never)
    assert d.mean == 1.0 and d.low == pytest.approx(0.772137, abs=5e-6) and d.high == 1.0
    # One shared task: Newcombe alone; none shared: no difference at all.
    one = paired_difference({"t1": [True] * 4, "x": [True]}, {"t1": [False] * 4})
    assert one.tasks == 1 and one.method == "Newcombe, one shared task" and one.mean == 1.0 and one.low < 1.0
    assert paired_difference({"t1": [True]}, {"t2": [False]}) is None
