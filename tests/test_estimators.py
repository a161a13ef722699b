"""The censored estimators on synthetic data with known answers, against hand computations."""

import math

import numpy as np
import pytest

import spikejax as sj

NAN = float("nan")


@pytest.mark.parametrize("n,expected", [
    ([3.0, 1.0, NAN, 2.0, NAN], 3.0),  # sorted 1, 2, 3, inf, inf: the 3rd
    ([1.0, NAN, NAN, 2.0], 2.0),  # at least half passed by n = 2 (the 2nd of 4)
    ([1.0, NAN, NAN, NAN], math.inf),  # three of four censored: above the budget
    ([NAN, 5.0], 5.0),  # half passed by 5
])
def test_censored_median_by_hand(n, expected):
    assert sj.censored_median(n) == expected


def test_censored_median_counts_only_valid_seeds_and_agrees_with_median_n():
    n = np.array([4.0, 1.0, NAN, 2.0, 8.0, NAN])
    valid = np.array([True, False, True, True, True, False])  # 4, nan, 2, 8: sorted 2, 4, 8, inf
    assert sj.censored_median(n, valid) == 4.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = np.where(rng.random(7) < 0.3, NAN, rng.integers(1, 100, 7).astype(float))
        m = sj.median_n(x)
        assert sj.censored_median(x) == (math.inf if math.isnan(m) else m)


def test_a_full_batch_search_gives_each_seed_its_censored_n_star():
    """`Search.n_per_seed`: the first grid n at which a seed's |rho| reaches the threshold (a dip
    after it does not undo it), inf where none does; with `valid`, the censored median by hand."""
    rho = np.array([[0.1, 0.95, 0.5, 0.99],   # first reaches 0.9 at n = 20
                    [0.1, 0.2, -0.91, 0.99],  # |rho|: at n = 40
                    [0.1, 0.2, 0.3, 0.4],     # never: censored
                    [0.92, 0.95, 0.97, 0.99],  # at the grid's bottom, n = 10
                    [0.1, 0.2, 0.3, 0.95]])   # at n = 80, but not counted
    res = sj.Search(rho=rho, cos_u=rho, valid=np.array([True, True, True, True, False]), rho0=np.zeros(5),
                             n_grid=np.array([10, 20, 40, 80]))
    np.testing.assert_array_equal(res.n_per_seed("rho", 0.9), [20.0, 40.0, math.inf, 10.0, 80.0])
    assert sj.censored_median(res.n_per_seed("rho", 0.9), res.valid) == 20.0  # 10, 20, 40, inf: the 2nd
    assert sj.censored_quantile(res.n_per_seed("rho", 0.9), 0.75, res.valid) == 40.0
    with pytest.raises(ValueError, match="metric='w' is not allowed"):
        res.n_per_seed("w")


def test_censored_quantile_never_averages_a_censored_seed():
    n = [10.0, 20.0, NAN, NAN]
    assert sj.censored_quantile(n, 0.25) == 10.0 and sj.censored_quantile(n, 0.5) == 20.0
    assert sj.censored_quantile(n, 0.75) == math.inf and sj.censored_quantile(n, 1.0) == math.inf


def test_local_slope_keeps_censored_resamples_open_at_the_top():
    """d = 1 -> 2, n* = 1 at d = 1 for every seed and 4 at d = 2 for two seeds of three, the
    third censored. The slope is log(4)/log(2) = 2. A resample of the d = 2 seeds has a censored
    median when it draws the censored seed at least twice: P = 3 (1/3)^2 (2/3) + (1/3)^3 = 7/27.
    So 7/27 of the resamples are +inf, the 95% end is open, and the 5% end is 2."""
    (s,) = sj.local_slopes([1.0, 2.0], [[1.0, 1.0, 1.0], [4.0, 4.0, NAN]], n_boot=20_000, seed=1)
    assert s.slope == pytest.approx(2.0)
    frac = np.mean(np.isinf(s.boot))
    assert abs(frac - 7 / 27) < 4 * math.sqrt(7 / 27 * 20 / 27 / 20_000), frac
    assert s.lo == pytest.approx(2.0) and s.hi == math.inf
    assert sj.interval_text(s.lo, s.hi) == "[2.00, open]"
    assert len(s.boot) == 20_000  # every resample kept


def test_local_slopes_of_an_exact_power_law_have_a_point_interval():
    d = np.array([16.0, 32.0, 64.0, 128.0])
    n = np.repeat((3 * d**2.5)[:, None], 9, 1)
    for s in sj.local_slopes(d, n, n_boot=200):
        assert s.slope == pytest.approx(2.5) and s.lo == pytest.approx(2.5) and s.hi == pytest.approx(2.5)


def test_tail_fit_uses_the_large_d_end_and_opens_with_censoring():
    """A curve bending to slope 3 at large d: the fit over the upper half reads 3, the whole
    range less. Censor 2 of 5 seeds at the largest d: the point estimate is unchanged (3 of 5
    passed), and the resamples drawing 3 or more censored seeds (P = 0.317 by the binomial
    sum) make the top open."""
    d = np.array([16.0, 32.0, 64.0, 128.0, 256.0, 512.0])
    curve = d**3 * (1 + 100 / d)  # slope -> 3 as d grows
    n = np.repeat(curve[:, None], 5, 1)
    fit = sj.tail_fit(d, n, n_boot=100)
    assert (fit.d_lo, fit.d_hi) == (64.0, 512.0)
    slope_hand = np.polyfit(np.log(d[2:]), np.log(curve[2:]), 1)[0]
    assert fit.eta == pytest.approx(slope_hand) and 2.6 < fit.eta < 3.0
    assert sj.tail_fit(d, n, d_min=16, n_boot=100).eta < fit.eta
    n[-1, :2] = NAN
    fit = sj.tail_fit(d, n, n_boot=20_000, seed=2)
    assert fit.eta == pytest.approx(slope_hand)
    p_open = sum(math.comb(5, k) * 0.4**k * 0.6 ** (5 - k) for k in (3, 4, 5))
    assert abs(np.mean(np.isinf(fit.boot)) - p_open) < 0.015
    assert fit.hi == math.inf and fit.lo == pytest.approx(slope_hand)


@pytest.mark.parametrize("kw,expected", [
    (dict(n_star=math.inf), "censored"),
    (dict(n_star=128.0, first_n=128.0), "start-dominated"),  # within the first grid point
    (dict(n_star=40.0, batch=16.0), "start-dominated"),  # 2.5 batches
    (dict(n_star=48.0, batch=16.0, previous=60.0), "non-monotone"),  # 3 batches, below the previous d
    (dict(n_star=480.0, batch=16.0, previous=60.0), "measured"),
])
def test_cell_status(kw, expected):
    assert sj.cell_status(**kw) == expected
    assert expected in sj.CELL_STATUSES


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="^d="):
        sj.local_slopes([2.0, 1.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="^n="):
        sj.local_slopes([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="^d_min="):
        sj.tail_fit([1.0, 2.0, 4.0], np.ones((3, 4)), d_min=3.0)
