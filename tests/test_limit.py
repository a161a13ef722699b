"""The d -> infinity limit of the exact chain (spikejax/_limit.py, docs/chain_limit.md).

Default tests: the diffusion's coefficients against single exact-chain steps at d = 1e8 (a
wrong coefficient, V where V' belongs, a missing factor c, fails), and `limit_passage`'s
scheme against plain Euler-Maruyama. Slow tests (`-m slow`): the limit's laws against the
chain's first passages at the largest affordable d (s = 3: tau*; s = 2: the B law).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import spikejax as sj
from spikejax import limit_passage, limit_sde, passage_shift, s2_constants


@pytest.fixture
def x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def one_step(d, s, b, c, m, loss, n, seed=0, link="h3", activation="h3"):
    """`N` independent chain steps from `<w,u> = m / sqrt(d)`: the increments of `m` and `dtau`."""
    p = sj.make_problem(int(d), key=None, kappa=0.0, link=link, activation=activation, loss=loss, reduced=True)
    r = m / np.sqrt(d)
    w0 = jnp.array([r, 0.0, np.sqrt(1 - r * r)])
    dt = b * c * d ** (-s / 2)
    run = lambda k: sj.simulate(p, sj.Spherical(), sj.Online(b), key=k, reduced=True, dt=dt, steps=1, w0=w0,
                                saveat=sj.SaveAt(steps=2)).w[0]
    w = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(seed), n))
    return (np.asarray(w, float) - r) * np.sqrt(d), b / d ** (s - 1)


def test_coefficients_closed_form(x64):
    # h3 link, h3 activation: E[phi'^2] = 3, E[f^2 xi^2] = E[h3^2 xi^2] = 7, E[phi^2 phi'^2] = 93.
    sde = limit_sde("h3", "h3", c=1.0, loss="correlation")
    assert (sde.s, sde.a) == (3, 3.0)
    np.testing.assert_allclose([sde.V, sde.Vp], [3.0, 21.0], rtol=1e-10)
    sde = limit_sde("h3", "h3", c=1.0, loss="squared", noise=0.5)
    np.testing.assert_allclose([sde.V, sde.Vp], [93 + 3 * 1.25, 93 + 3 * 7.25], rtol=1e-10)
    # the s >= 3 shift for h3/h3 in closed form: (artanh(th) - 1/th) / (3 c)
    np.testing.assert_allclose(passage_shift("h3", "h3", c=2.0, threshold=0.5), (np.arctanh(0.5) - 2) / 6, rtol=1e-9)


@pytest.mark.parametrize("loss", ["correlation", pytest.param("squared", marks=pytest.mark.slow)])
def test_one_step_variance_is_c2_Vprime(x64, loss):
    """Var(dm) / dtau -> c^2 V', V' = E[g^2 xi^2] (not E[g^2]), at d = 1e8, m = 1."""
    c, N = 1.3, 4000
    dm, dtau = one_step(1e8, 3, 256, c, 1.0, loss, N)
    sde = limit_sde("h3", "h3", c=c, loss=loss)
    est = dm.var() / dtau
    se = est * np.sqrt((stats.kurtosis(dm) + 2) / N)
    assert abs(est - c**2 * sde.Vp) < 4 * se, (est, c**2 * sde.Vp, se)
    if loss == "correlation":  # V' = 7 V here: the retraction's moment is not the noise's
        assert abs(est - c**2 * sde.V) > 4 * se


@pytest.mark.slow
def test_one_step_mean_retraction(x64):
    """The pull -c^2 V m / 2: large c (c^2 V dtau = 0.01) so that it dominates, d = 1e8, m = 10."""
    d, b, m, N = 1e8, 256, 10.0, 3000
    V = limit_sde("h3", "h3", c=1.0, loss="correlation").V
    c = float(np.sqrt(0.01 / (V * b / d**2)))
    dm, dtau = one_step(d, 3, b, c, m, "correlation", N, seed=1)
    sde = limit_sde("h3", "h3", c=c, loss="correlation")
    est, se = dm.mean() / dtau, dm.std() / np.sqrt(N) / dtau
    pred = float(sde.drift(m)) * (1 - 3 * 0.01 / 4)  # E[1/sqrt(1+x)] ~ 1 - x/2 + 3x^2/8 at x = c^2 V dtau
    assert pred < 0 and abs(est - pred) < 4 * se, (est, pred, se)


def test_one_step_mean_signal(x64):
    """The signal c s alpha_s beta_s m^{s-1}: m = 1000 at d = 1e8 (rho = 0.1, factor 1 - rho^2
    kept) so that one step resolves it; at m = O(1) its signal-to-noise per step is sqrt(dtau)."""
    d, b, m, c, N = 1e8, 1000, 1000.0, 1.0, 3000
    dm, dtau = one_step(d, 3, b, c, m, "correlation", N, seed=2)
    sde = limit_sde("h3", "h3", c=c, loss="correlation")
    est, se = dm.mean() / dtau, dm.std() / np.sqrt(N) / dtau
    pred = c * sde.a * m**2 * (1 - m**2 / d) - c**2 * sde.V * m / 2
    assert abs(est - pred) < 4 * se and se < 0.25 * pred, (est, pred, se)


def test_limit_passage_matches_plain_euler(x64):
    """The random-clock Milstein scheme of `limit_passage` against plain Euler-Maruyama in tau
    (independent code, dtau = 2.5e-4, stop at m = 50 plus the tail 1/(a c m)): same tau* law.
    Medians about 0.19; bootstrap SE of each 0.006, of their difference 0.009: the tolerance
    0.03 is 3.3 SE (fixed keys, so the test is deterministic)."""
    c, paths, dtau = 2.0, 2000, 2.5e-4
    lim = limit_passage("h3", "h3", c=c, loss="correlation", paths=paths, key=jax.random.key(7))
    sde = lim.sde
    rng = np.random.default_rng(0)
    m = np.abs(rng.standard_normal(paths))
    tau, t = np.full(paths, np.nan), 0.0
    while np.isnan(tau).any() and t < 5.0:
        live = np.isnan(tau)
        m[live] += sde.drift(m[live]) * dtau + sde.diffusion * np.sqrt(dtau) * rng.standard_normal(live.sum())
        t += dtau
        hit = live & (m >= 50)
        tau[hit] = t + 1 / (sde.a * c * m[hit])
    assert not np.isnan(lim.tau).any() and np.isnan(tau).sum() <= 2
    ks = stats.ks_2samp(lim.tau, tau[~np.isnan(tau)])
    assert ks.pvalue > 1e-3, (np.median(lim.tau), np.nanmedian(tau), ks)
    assert abs(np.median(lim.tau) - np.nanmedian(tau)) < 0.03, (np.median(lim.tau), np.nanmedian(tau))
    assert lim.step_error < 0.01 * np.median(lim.tau)


def chain_tau(d, c, seeds, seed=0, bdiv=512):
    """n*/d^2 of `seeds` right-sign seeds (selected by rho(w(0)) before the run)."""
    p = sj.make_problem(d, key=None, kappa=0.0, link="h3", activation="h3", loss="correlation", reduced=True)
    keys = jax.random.split(jax.random.key(seed), 3 * seeds)
    r0 = sj.passage_n(p, sj.Spherical(), sj.Online(1), keys=keys, dt=1e-9, steps=1, thresholds=(0.5,), reduced=True,
                      chunk=1)
    keys = keys[np.flatnonzero(r0.valid)[:seeds]]
    b = max(1, d * d // bdiv)  # dtau = 1/bdiv a step
    r = sj.passage_n(p, sj.Spherical(), sj.Online(b), keys=keys, dt=b * c * d**-1.5, steps=int(40 * d * d / b),
                     thresholds=(0.5,), reduced=True, chunk=16, stop_fraction=0.6)
    tau = r.n[:, 0] / d**2
    return np.where(np.isnan(tau), np.inf, tau), b * r.ran / d**2





def censored_ks(x, ref, cut):
    """sup over t < cut of |F_x(t) - F_ref(t)| (x: +inf for seeds not passed by `cut`)."""
    x, ref = np.sort(x), np.sort(ref)
    pts = np.concatenate([x[x < cut], ref[ref < cut]])
    gap = lambda side: np.abs(np.searchsorted(x, pts, side) / x.size - np.searchsorted(ref, pts, side) / ref.size)
    return float(max(gap("left").max(), gap("right").max()))


@pytest.mark.slow
def test_tau_star_law_matches_chain(x64):
    """n*/d^2 of the chain (d = 2^10, 128 right-sign seeds, c = 0.5, threshold 0.5) against the
    limit's tau*. c = 0.5, not 2: at c = 2 the retraction at rho = 0.5 is 0.85 of the signal at
    d = 2^8 and the chain is far from the limit at every affordable d (docs/chain_limit.md).
    (1) the KS distance below the run's cut is within the 99.9 % quantile of the limit against
    itself (same size, same cut; p > 1e-3); (2) the limit's median lies in the chain median's 99 %
    bootstrap interval; (3) the same KS distance to 2 tau* (a time scale off by 1/c = 2) is
    beyond that 99.9 % quantile. Measured (these keys): median 0.61 against the limit's 0.80, KS
    0.149 against the null's 99.9 % quantile 0.160 (a close pass), 0.47 against 2 tau*. The
    experiment's other keys (docs/data/chain_limit.json) at d = 2^10: median 0.76, KS p = 0.2."""
    c, d, seeds = 0.5, 2**10, 128
    tau, cut = chain_tau(d, c, seeds, seed=11)
    lim = limit_passage("h3", "h3", c=c, loss="correlation", paths=4000, key=jax.random.key(5))
    ref = lim.tau
    assert not np.isnan(ref).any() and lim.step_error < 0.01 * np.median(ref)
    assert np.mean(np.isinf(tau)) < 0.45
    rng = np.random.default_rng(0)
    null = [censored_ks(np.where(v < cut, v, np.inf), ref, cut) for v in rng.choice(ref, (2000, seeds))]
    ks = censored_ks(tau, ref, cut)
    assert ks < np.quantile(null, 0.999), (ks, np.quantile(null, 0.999), np.median(tau), np.median(ref))
    boot = np.median(rng.choice(np.minimum(tau, 1e6), (4000, seeds)), axis=1)
    lo, hi = np.quantile(boot, [0.005, 0.995])  # hi may be censored (above the cut): then only lo bites
    assert lo < np.median(ref) < hi, (lo, np.median(ref), hi)
    ks2 = censored_ks(tau, 2 * ref, cut)
    assert ks2 > np.quantile(null, 0.999), (ks2, np.quantile(null, 0.999))
    print(f"d = {d}: median {np.median(tau):.3f} (limit {np.median(ref):.3f}), 99 % CI [{lo:.3f}, {hi:.3g}], "
          f"KS {ks:.3f}, against 2 tau* {ks2:.3f}, null 99.9 % {np.quantile(null, 0.999):.3f}, cut {cut:.3f}")


@pytest.mark.slow
def test_s2_constants_match_chain(x64):
    """n*/d - A log d at s = 2 (h2 link, h2 activation, correlation loss, c = 0.5) against
    the limit's B law at d = 2^14."""
    c, d, seeds = 0.5, 2**14, 96
    k = s2_constants("h2", "h2", c=c, loss="correlation", threshold=0.5)
    np.testing.assert_allclose([k.lam, k.A], [0.75, 2 / 3], rtol=1e-10)
    b = 64
    p = sj.make_problem(d, key=None, kappa=0.0, link="h2", activation="h2", loss="correlation", reduced=True)
    r = sj.passage_n(p, sj.Spherical(), sj.Online(b), keys=jax.random.split(jax.random.key(3), seeds),
                     dt=b * c / d, steps=int(30 * d / b), thresholds=(0.5,), reduced=True, chunk=64)
    B_chain = r.n[:, 0] / d - k.A * np.log(d)
    B_lim = k.B_sample(jax.random.key(4), 4000)
    ks = stats.ks_2samp(B_chain, B_lim)
    assert ks.pvalue > 1e-3, (np.median(B_chain), k.B_median, ks)


def test_errors_name_the_parameter(x64):
    with pytest.raises(ValueError, match="link"):
        limit_passage("h2", "h2", c=1.0, paths=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="c="):
        limit_sde("h3", "h3", c=-1.0)
    with pytest.raises(ValueError, match="loss"):
        limit_sde("h3", "h3", c=1.0, loss="hinge")
    with pytest.raises(ValueError, match="activation"):
        limit_sde("h3", "h2", c=1.0)
    with pytest.raises(ValueError, match="c="):
        s2_constants("h2", "h2", c=10.0, loss="correlation")
    with pytest.raises(ValueError, match="dtau"):
        limit_passage("h3", "h3", c=1.0, paths=4, key=jax.random.key(0), dtau=1.0)
    with pytest.raises(ValueError, match="threshold"):
        passage_shift("h3", "h3", c=1.0, threshold=1.5)
