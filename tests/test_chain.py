"""The exact chain (`reduced=True` for `Online` and `Reused`) against the d-dimensional engine:
pathwise on the very same samples (to float64 rounding), in distribution with its own draws
(two-sample tests), and one step's mean and variance against Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import spikejax as sj
from spikejax import internal

from optimized import compiled


@pytest.fixture(autouse=True)
def x64():
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


DYNAMICS = [sj.Spherical(), sj.Normalized(), sj.Preconditioned(), sj.Vanilla()]
# The pathwise cases in the default run: each dynamic once, each loss twice; the rest under `slow`.
FAST = {("Normalized", "correlation"), ("Preconditioned", "squared"), ("Vanilla", "correlation")}  # Spherical: slow (12 s)
PATHWISE = [pytest.param(dyn, loss, id=f"{type(dyn).__name__}-{loss}",
                         marks=() if (type(dyn).__name__, loss) in FAST else pytest.mark.slow)
            for dyn in DYNAMICS for loss in ("squared", "correlation")]


def _problem(d, loss="squared", r1=0.25, r2=0.5, noise=0.3):
    return sj.make_problem(d, key=jax.random.key(3), r2=r2, r1=r1, link="h2", loss=loss, noise=noise)


def _frame(p, w):
    """`(u, v, e3)` of the d-dimensional iterate `w`, as the chain's `frame_coordinates` picks them."""
    u = p.u
    c, s = internal.spike_cosine(p)
    v = (p.covariance.theta - c * u) / s
    r = w - (w @ u) * u - (w @ v) * v
    return u, v, r / jnp.linalg.norm(r)


def _batch(key, p, w, b):
    """A fresh batch of the d-dimensional run: `(key, z, eps, frame coordinates (b, 3), orthogonal parts)`."""
    kz, ke, key = jax.random.split(key, 3)
    z = jax.random.normal(kz, (b, p.d))
    eps = jax.random.normal(ke, (b,))
    axes = jnp.stack(_frame(p, w))  # (3, d): u, v, e3
    frame = z @ axes.T
    return key, z, eps, frame, z - frame @ axes


def _step(sim, dyn, w, grad, dt):
    return dyn.retract(w - dt * dyn.direction(w, grad, sim), w, sim)


def _state(p, w):
    u, v, _ = _frame(p, w)
    return np.array([w @ u, w @ v, np.sqrt(max(float(w @ w - (w @ u) ** 2 - (w @ v) ** 2), 0.0))])


def _grad_d(sim, w, z, eps):
    y = sim.problem.labels(z, eps)
    return jax.grad(sj.sample_risk)(w, z, y, sim.problem, sim.neuron_cov)


def _chain_grad(sim, x, draw):
    return jax.grad(internal.batch_risk)(x, draw, sim, internal.pointwise_losses)


@pytest.mark.parametrize("dyn, loss", PATHWISE)
def test_online_chain_follows_the_d_dimensional_run_on_the_same_samples(dyn, loss):
    """Fed the frame projections of the samples that the d-dimensional run draws, and the norm
    of their gradient's orthogonal part, the chain's state equals the run's to 1e-9."""
    d, b, dt, steps = 24, 5, 0.3, 30
    p = _problem(d, loss)
    w0 = jax.random.normal(jax.random.key(1), (d,))
    w0 = w0 / jnp.linalg.norm(w0)
    sim_d, w = sj.prepare(p, dyn, sj.Online(b), key=jax.random.key(0), w0=w0)
    sim_c, x = sj.prepare(p, dyn, sj.Online(b), key=jax.random.key(0), w0=w0, reduced=True)
    assert isinstance(sim_c.source, sj.Chain) and x.shape == (4,)
    np.testing.assert_allclose(internal.canonical(x)[:3], _state(p, w), atol=1e-12)

    @jax.jit  # one compiled step of both runs (op-by-op dispatch made this test 10-25 s)
    def both(key, x, w):
        key, z, eps, frame, perp = _batch(key, p, w, b)
        # the samples' loss derivatives g_i, then chi = |sum g_i z_perp_i| / sqrt(sum g_i^2)
        pre = z @ (p.covariance.sqrt(w) / sj.neuron_norm(w, sim_d.neuron_cov))
        y = p.labels(z, eps)
        g = jax.grad(lambda q: jnp.sum(internal.pointwise_losses(p, p.activation(q), y)))(pre)
        chi = jnp.linalg.norm(g @ perp) / jnp.sqrt(jnp.where(g @ g > 0, g @ g, 1.0))  # no active sample: no step
        draw = internal.ChainDraw(internal.pad(frame, 4), eps, chi)
        x = internal.canonical(x)
        x_new = _step(sim_c, dyn, x, _chain_grad(sim_c, x, draw), dt)
        return key, x_new, _step(sim_d, dyn, w, _grad_d(sim_d, w, z, eps), dt)

    key = jax.random.key(7)
    for k in range(steps):
        key, x, w = both(key, x, w)
        np.testing.assert_allclose(np.asarray(internal.canonical(x)[:3]), _state(p, w), atol=1e-9, rtol=0)
    assert abs(float(x[0] / jnp.linalg.norm(x)) - float(w @ p.u / jnp.linalg.norm(w))) < 1e-9


@pytest.mark.parametrize("dyn, loss", PATHWISE)
def test_reused_chain_follows_the_d_dimensional_run_on_the_same_samples(dyn, loss):
    """Reused batches: fed the projections and the Cholesky factor of the Gram matrix of the
    batch's orthogonal parts, the chain's state equals the d-dimensional run's at every step."""
    d, b, reuse, dt, batches = 20, 6, 4, 0.3, 6
    p = _problem(d, loss)
    w0 = jax.random.normal(jax.random.key(2), (d,))
    w0 = w0 / jnp.linalg.norm(w0)
    sim_d, w = sj.prepare(p, dyn, sj.Reused(b, reuse), key=jax.random.key(0), w0=w0)
    sim_c, x = sj.prepare(p, dyn, sj.Reused(b, reuse), key=jax.random.key(0), w0=w0, reduced=True)
    assert x.shape == (3 + b,)

    @jax.jit  # one compiled batch of both runs: every reuse step's pair of states
    def both(key, x, w):
        key, z, eps, frame, perp = _batch(key, p, w, b)
        L = jnp.linalg.cholesky(perp @ perp.T)
        draw = internal.ChainDraw(jnp.concatenate([frame, L], 1), eps, None)
        x = internal.canonical(x)
        xs, ws = [], []
        for _ in range(reuse):
            x = _step(sim_c, dyn, x, _chain_grad(sim_c, x, draw), dt)
            w = _step(sim_d, dyn, w, _grad_d(sim_d, w, z, eps), dt)
            xs, ws = xs + [x], ws + [w]
        return key, xs, ws

    key = jax.random.key(8)
    for _ in range(batches):
        key, xs, ws = both(key, x, w)
        for x, w in zip(xs, ws):
            np.testing.assert_allclose(np.asarray(internal.canonical(x)[:3]), _state(p, w), atol=1e-9, rtol=0)


def test_bartlett_factor_has_the_wishart_moments():
    """`L L^T` from `internal.bartlett` has the Wishart mean `df I` and the variance `df` of an
    off-diagonal entry, `2 df` of a diagonal one; with `df < b` its rank is `df`."""
    b, df, n = 4, 7.0, 20000
    L = jax.vmap(lambda k: internal.bartlett(k, b, df, jnp.float64))(jax.random.split(jax.random.key(0), n))
    W = np.asarray(jnp.einsum("nij,nkj->nik", L, L))
    np.testing.assert_allclose(W.mean(0), df * np.eye(b), atol=4 * np.sqrt(2 * df / n) * 1.5)
    assert abs(W[:, 0, 1].var() / df - 1) < 0.05 and abs(W[:, 2, 2].var() / (2 * df) - 1) < 0.06
    low = internal.bartlett(jax.random.key(1), 5, 2.0, jnp.float64)
    assert np.linalg.matrix_rank(np.asarray(low @ low.T)) == 2


def test_chain_draws_are_standard_normal_in_whole_blocks_and_leave_other_streams_alone():
    """A batch's frame coordinates and label noise are independent N(0, 1) (moments within Monte
    Carlo error), drawn with JAX's non-partitionable bit layout (two words per threefry block);
    draws outside the chain keep the process's layout."""
    key, b = jax.random.key(5), 20000
    draw = internal.draw_batch(key, b, 1, 1000.0, jnp.float64)
    x = np.column_stack([np.asarray(draw.z[:, :3]), np.asarray(draw.eps)])
    se = 1 / np.sqrt(b)
    np.testing.assert_allclose(x.mean(0), 0, atol=4 * se)
    np.testing.assert_allclose(np.cov(x.T), np.eye(4), atol=4 * np.sqrt(2) * se)
    assert abs(float(draw.chi) ** 2 / 997 - 1) < 0.2  # chi^2 with 997 degrees of freedom
    kz = jax.random.split(key, 3)[0]
    with jax.threefry_partitionable(False):
        kz_whole = jax.random.split(key, 3)[0]
        z_whole = jax.random.normal(kz_whole, (b, 3), jnp.float32)
    np.testing.assert_array_equal(np.asarray(draw.z[:, :3]), np.asarray(z_whole, np.float64))
    assert not np.array_equal(np.asarray(jax.random.normal(kz, (b, 3), jnp.float32)), np.asarray(z_whole))
    assert jax.config.jax_threefry_partitionable  # the scope did not leak


@pytest.mark.slow  # 4 compiles; by default the pathwise tests above run the chain with its pre-drawn blocks
def test_a_block_of_predrawn_batches_is_the_step_by_step_draw(monkeypatch):
    """One-pass chains at small batches draw a block of steps' batches at once (`predraws`): the
    same draws as step by step, so the same first passages and the same path up to float64 rounding
    (the fused arithmetic rounds differently; the escape from rho ~ d^-1/2 amplifies it to about 1e-10)."""
    _complexity, _simulate = internal.complexity_module, internal.simulate_module
    assert sj.Chain(16).predraws and not sj.Chain(256).predraws and not sj.Chain(16, 2).predraws
    p = sj.make_problem(10**6, key=jax.random.key(0), kappa=3.0, r1=0.0, link="h2", activation="relu", noise=0.25,
                        reduced=True)
    p256 = sj.make_problem(256, key=jax.random.key(0), kappa=0.0, link="h2", activation="relu", noise=0.25, reduced=True)
    keys = jax.random.split(jax.random.key(1), 4)

    def run():
        _complexity._passage_compiled.cache_clear()
        sim = jax.jit(jax.vmap(lambda k: sj.simulate(p, sj.Normalized(), sj.Online(16), key=k, dt=2e-3, steps=700,
                                                     reduced=True, saveat=sj.SaveAt(steps=8)).rho))(keys)
        res = sj.passage_n(p256, sj.Spherical(), sj.Online(16), keys=keys, dt=0.1 * 16 / 256, steps=8000,
                           thresholds=(0.5, 0.9), chunk=512, reduced=True)
        return np.asarray(sim), res.n

    rho_block, n_block = run()
    monkeypatch.setattr(_simulate, "PREDRAW_SAMPLES", 1)  # a block of one step: drawn step by step
    rho_step, n_step = run()
    _complexity._passage_compiled.cache_clear()
    np.testing.assert_allclose(rho_block, rho_step, rtol=0, atol=1e-9)  # rounding, grown by the escape's instability
    np.testing.assert_array_equal(n_block, n_step)
    assert np.isfinite(n_block).all()  # every seed passed: the passages are compared, not NaN


@pytest.mark.slow  # 24 s; by default the chain stays checked pathwise (its law: the slow tests below)
@pytest.mark.parametrize("dyn", [sj.Spherical(), sj.Normalized()],
                         ids=lambda d: type(d).__name__)
def test_one_step_mean_and_variance_of_the_overlap_match_monte_carlo(dyn):
    """One step from a fixed `w`: the mean and variance of `<w', u>` over the chain's own draws
    agree with Monte Carlo over fresh d-dimensional batches (within 4 standard errors)."""
    d, b, dt, n = 40, 128, 0.5, 8000
    p = _problem(d, noise=0.2)
    w0 = jax.random.normal(jax.random.key(5), (d,))
    w0 = w0 / jnp.linalg.norm(w0) + 0.5 * p.u
    w0 = w0 / jnp.linalg.norm(w0)
    keys = jax.random.split(jax.random.key(9), n)

    def chain_one(key):
        return sj.simulate(p, dyn, sj.Online(b), key=key, w0=w0, reduced=True, dt=dt, steps=1,
                           saveat=sj.SaveAt(steps=2)).w[0]

    def d_one(key):
        return sj.simulate(p, dyn, sj.Online(b), key=key, w0=w0, dt=dt, steps=1, saveat=sj.SaveAt(steps=2)).w @ p.u

    a, c = np.asarray(jax.jit(jax.vmap(chain_one))(keys)), np.asarray(jax.jit(jax.vmap(d_one))(keys))
    se_mean = np.sqrt((a.var() + c.var()) / n)
    assert abs(a.mean() - c.mean()) < 4 * se_mean
    assert abs(a.mean() - float(w0 @ p.u)) > 4 * se_mean  # the step moves the mean: the test has power
    se_var = np.sqrt(2 / (n - 1)) * (a.var() + c.var()) / np.sqrt(2)
    assert abs(a.var() - c.var()) < 4 * se_var


def _ks(d, dyn, source, seeds, steps, dt, times):
    p = _problem(d, r1=0.25, r2=0.5, noise=0.1)
    keys = jax.random.split(jax.random.key(11), seeds)
    sa = sj.SaveAt(steps=times, passages={"rho": (0.5,)})
    run = lambda reduced: jax.vmap(lambda k: sj.simulate(p, dyn, source, key=k, dt=dt, steps=steps, saveat=sa,
                                                         reduced=reduced))
    # the d-dimensional run draws seeds x steps x batch x d normals: compiled optimised
    a, c = jax.jit(run(True))(keys), compiled(run(False), keys)(keys)
    out = [stats.ks_2samp(np.asarray(a.ys["cos_u"][:, i]), np.asarray(c.ys["cos_u"][:, i])).pvalue
           for i in range(1, len(times))]
    ta, tc = np.asarray(a.passages["rho"][:, 0]), np.asarray(c.passages["rho"][:, 0])
    if np.isfinite(tc).mean() > 0.9:  # first passages, where the run learns (never passed: after all)
        out.append(stats.ks_2samp(np.nan_to_num(ta, nan=1e9), np.nan_to_num(tc, nan=1e9)).pvalue)
    else:  # a run that does not learn at this step (preconditioned online SGD, whose noise is 1 + kappa
        # times larger): the final |rho| instead
        out.append(stats.ks_2samp(np.abs(np.asarray(a.ys["rho"][:, -1])), np.abs(np.asarray(c.ys["rho"][:, -1]))).pvalue)
    return np.array(out)


@pytest.mark.slow  # 12-22 s, the default suite's heaviest; the pathwise tests check the chain's exactness there
@pytest.mark.parametrize("source", [sj.Online(4), sj.Reused(4, 3)], ids=["online", "reused"])
def test_chain_and_d_dimensional_runs_agree_in_distribution_at_d64(source):
    """Two-sample KS tests on cos_u at three times and on the first passage of rho over 0.5,
    400 seeds each, the chain's own draws against the d-dimensional engine at d = 64."""
    p = _ks(64, sj.Normalized(), source, 400, 600, 0.2, (0, 30, 150, 600))
    assert p.min() > 1e-3, p


@pytest.mark.slow
@pytest.mark.parametrize("dyn", DYNAMICS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("source", [sj.Online(8), sj.Reused(8, 4)], ids=["online", "reused"])
def test_chain_and_d_dimensional_runs_agree_in_distribution_at_d256(dyn, source):
    p = _ks(256, dyn, source, 400, 3000, 0.2, (0, 100, 1000, 3000))
    assert p.min() > 1e-3, p


@pytest.mark.slow
def test_reduced_problem_runs_at_any_dimension_and_matches_the_full_problem_in_law():
    """`make_problem(d, reduced=True)` holds 3 coordinates whatever `d` (here 10^9); at d = 64 its
    runs have the full problem's law (initial rho and the final cos_u, KS over 400 seeds)."""
    big = sj.make_problem(10**9, key=None, r2=0.5, r1=0.25, link="h2", reduced=True)
    assert big.d == 3 and float(big.ambient_d) == 1e9
    tr = sj.simulate(big, sj.Spherical(), sj.Online(16), key=jax.random.key(0), dt=16 * 1e-9 ** 0.5, steps=50,
                     reduced=True)
    assert tr.w.shape == (3,) and abs(float(jnp.linalg.norm(tr.w)) - 1) < 1e-12
    assert float(tr.ys["cos_u"][0]) ** 2 < 1e-7  # |<w0, u>| ~ d^{-1/2}
    small = sj.make_problem(64, key=None, r2=0.5, r1=0.25, link="h2", reduced=True)
    full = sj.make_problem(64, key=jax.random.key(1), r2=0.5, r1=0.25, link="h2")
    keys = jax.random.split(jax.random.key(4), 400)
    run = lambda p: jax.jit(jax.vmap(lambda k: sj.simulate(p, sj.Spherical(), sj.Online(4), key=k, dt=0.2,
                                                            steps=300, reduced=True).ys))(keys)
    a, c = run(small), run(full)
    for name in ("rho", "cos_u"):
        for i in (0, -1):
            assert stats.ks_2samp(np.asarray(a[name][:, i]), np.asarray(c[name][:, i])).pvalue > 1e-3


@pytest.mark.slow  # 29 s; passage_n itself stays in test_complexity.py, the chain in the pathwise tests
def test_passage_n_runs_on_the_chain():
    """`passage_n(..., reduced=True)` at d = 2^14: every seed passes, and n* at s = 2 lies within
    a factor 4 of d log d."""
    d = 2**14
    p = sj.make_problem(d, key=None, kappa=0.0, link="h2", reduced=True)
    b = 64
    res = sj.passage_n(p, sj.Spherical(), sj.Online(b), keys=jax.random.split(jax.random.key(0), 16),
                       dt=b * 0.5 / d, steps=4 * d * 20 // b, thresholds=(0.5,), reduced=True)
    n = res.n[:, 0]
    assert np.all(np.isfinite(n))
    assert 0.25 < np.median(n) / (d * np.log(d)) < 4


def test_passage_n_on_the_chain_refuses_a_budget_past_the_step_counter():
    """A step budget past the int32 step counter is refused before anything compiles, naming it."""
    p = sj.make_problem(2**20, key=None, kappa=0.0, link="h2", reduced=True)
    with pytest.raises(ValueError, match=r"steps=2147483648 is not allowed; allowed: at most 1073741824"):
        sj.passage_n(p, sj.Spherical(), sj.Online(64), keys=jax.random.split(jax.random.key(0), 2), dt=1e-9,
                     steps=2**31, reduced=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(inputs=sj.StudentT(5.0)), "inputs="),
    (dict(inputs=sj.Rademacher()), "inputs="),
    (dict(n_unlabelled=64), "n_unlabelled="),
    (dict(solver=sj.Optax(__import__("optax").adam(1e-2))), "solver=Optax"),
])
def test_chain_refuses_where_it_is_not_exact(kwargs, match):
    inputs = kwargs.pop("inputs", None)
    p = sj.make_problem(32, key=jax.random.key(0), r2=0.5, inputs=inputs)
    with pytest.raises(ValueError, match=rf"^reduced=True is not allowed with {match}"):
        sj.simulate(p, sj.Normalized(), sj.Online(4), key=jax.random.key(1), steps=3, reduced=True, **kwargs)
    tr = sj.simulate(p, sj.Normalized(), sj.Online(4), key=jax.random.key(1), steps=3, reduced="auto", **kwargs)
    assert tr.w.shape == (32,)  # "auto": the d-dimensional form where the chain is not exact


def test_chain_refuses_float32_and_full_problems_refuse_frame_use():
    p = sj.make_problem(32, key=jax.random.key(0), r2=0.5)
    jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValueError, match="^reduced=True is not allowed with float64 off"):
        sj.simulate(p, sj.Normalized(), sj.Online(4), key=jax.random.key(1), steps=3, reduced=True)
    jax.config.update("jax_enable_x64", True)
    frame = sj.make_problem(32, key=None, r2=0.5, reduced=True)
    with pytest.raises(ValueError, match="^reduced=False is not allowed; the problem is held in frame"):
        sj.simulate(frame, sj.Normalized(), sj.Online(4), key=jax.random.key(1), steps=3)
    with pytest.raises(ValueError, match="^reduced=True is not allowed with source=Empirical"):
        sj.simulate(p, sj.Normalized(), sj.Empirical(8), key=jax.random.key(1), steps=3, reduced=True)


def test_sweep_runs_the_chain_from_a_config_at_any_d():
    """`reduced = true` with an online source: the sweep runs the chain in float64 at d = 2^40
    (its plan holds the frame, not d), and one configuration equals `sj.simulate` alone."""
    jax.config.update("jax_enable_x64", False)  # the config's own precision takes over
    cfg = dict(seeds=2, d=2**40, r2=[0.0, 0.5], r1=0.25, source="online", batch=16, reduced=True,
               dynamic="normalized", dt=16 * 2.0**-40, steps=40, record=5)
    assert sj.load_config(cfg)["precision"] == ["float64"]
    with pytest.raises(ValueError, match="^reduced=True is not allowed; not with precision='float32'"):
        sj.load_config(dict(cfg, precision="float32"))
    ds = sj.sweep(cfg, progress=False)
    assert ds["rho"].dtype == np.float64 and (ds["status"] == "ok").all()
    jax.config.update("jax_enable_x64", True)
    keys = sj.config_keys(1)
    p = sj.make_problem(2**40, key=None, r2=0.5, r1=0.25, reduced=True)
    alone = sj.simulate(p, sj.Normalized(), sj.Online(16), key=keys.run, dt=16 * 2.0**-40, steps=40,
                        saveat=sj.SaveAt(steps=5), reduced=True)
    np.testing.assert_allclose(ds["rho"].sel(seed=1, r2=0.5).values, alone.ys["rho"],
                               rtol=1e-12)
