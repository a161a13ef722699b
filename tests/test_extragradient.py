"""Extragradient SGD (`sj.ExtraGradient`, Arnaboldi et al. 2024) against an independent numpy
implementation of its update on the engine's own draws; `displacement = 0` against
`sj.Online`; a sweep against `simulate`; its exact chain (`reduced=True`) pathwise against
the d-dimensional run on the same samples; and its refusals."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj
from spikejax import internal


@pytest.fixture
def x64():
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():  # ReLU is blind to He3 in population: the sampled sources warn
        warnings.simplefilter("ignore", UserWarning)
        yield


def _problem(d, loss="squared", link="he3", noise=0.2):
    return sj.make_problem(d, key=jax.random.key(3), kappa=4.0, r1=0.25, link=link, activation="relu",
                           loss=loss, noise=noise)


def _numpy_egd(p, dyn, w, z, y, rho, dt):
    """One EgD step in numpy: `w~_i = w - rho grad l_i(w)`, `g = mean_i grad l_i(w~_i)`, then the
    dynamic's Euler step (plain neuron for spherical and vanilla, the Sigma neuron for normalized)."""
    cov = p.covariance
    th, kap, sc = (np.asarray(a, np.float64) for a in (cov.theta, cov.kappa, cov.scale))
    eye = np.eye(th.size)
    sig = sc * (eye + kap * np.outer(th, th))
    x = np.asarray(z) @ (np.sqrt(sc) * (eye + (np.sqrt(1 + kap) - 1) * np.outer(th, th)))  # rows Sigma^{1/2} z_i
    y = np.asarray(y)
    sigma_neuron = dyn == "normalized"

    def grads(v):  # per-sample gradients at the rows of v (b, d)
        n = np.sqrt(np.einsum("bi,ij,bj->b", v, sig, v)) if sigma_neuron else np.ones(len(v))
        pre = np.sum(x * v, 1) / n
        dpre = x / n[:, None] - (np.sum(x * v, 1) / n**3)[:, None] * (v @ sig) if sigma_neuron else x
        out = np.maximum(pre, 0.0)
        dloss = (out - y) if p.loss.name == "squared" else -y
        return (dloss * (pre > 0))[:, None] * dpre

    b = len(y)
    g = grads(np.tile(w, (b, 1)))
    g = grads(w[None, :] - rho * g).mean(0)
    if dyn == "spherical":
        w = w - dt * (g - w * (w @ g) / (w @ w))
        return w / np.linalg.norm(w)
    w_new = w - dt * g
    return w_new * np.linalg.norm(w) / np.linalg.norm(w_new) if dyn == "normalized" else w_new


DYNAMICS = {"spherical": sj.Spherical(), "normalized": sj.Normalized(), "vanilla": sj.Vanilla()}
FAST = {("normalized", "correlation"), ("vanilla", "squared")}  # the per-sample path and the closed form
CASES = [pytest.param(dyn, loss, id=f"{dyn}-{loss}", marks=() if (dyn, loss) in FAST else pytest.mark.slow)
         for dyn in DYNAMICS for loss in ("squared", "correlation")]


@pytest.mark.parametrize("dyn, loss", CASES)
def test_extragradient_is_the_numpy_egd_update_on_the_same_draws(x64, dyn, loss):
    """`simulate` with `ExtraGradient` equals the numpy EgD loop fed the source's own draws
    (`source.draw(data, k, sim)`, those of `Online`), to float64 rounding; the displacement
    matters (the numpy loop with `rho = 0` ends elsewhere)."""
    d, b, dt, steps, disp = 24, 16, 0.2, 10, 3.0
    p = _problem(d, loss)
    src = sj.ExtraGradient(b, disp)
    kw = dict(key=jax.random.key(0), dt=dt, steps=steps, w0="orthogonal")
    sim, w = sj.prepare(p, DYNAMICS[dyn], src, **kw)
    w = w_online = np.asarray(w)
    draw = jax.jit(lambda k: src.draw(sim.data, k, sim))  # one compile, not one per operation
    for k in range(steps):
        z, y = draw(k)
        w = _numpy_egd(p, dyn, w, z, y, disp / d, dt)
        w_online = _numpy_egd(p, dyn, w_online, z, y, 0.0, dt)
    tr = sj.simulate(p, DYNAMICS[dyn], src, **kw)
    np.testing.assert_allclose(np.asarray(tr.w), w, rtol=0, atol=1e-11)
    assert np.max(np.abs(w_online - w)) > 1e-3


@pytest.mark.parametrize("dyn", ["spherical", pytest.param("normalized", marks=pytest.mark.slow)])
def test_zero_displacement_is_online_sgd(dyn):
    """`ExtraGradient(b, 0)` draws what `Online(b)` draws and takes the same step: its gradient
    equals `Online`'s at every step, to float32 rounding (the closed form for the plain neuron,
    per-sample gradients for the Sigma one), and the displacement changes it."""
    p = _problem(32, noise=0.3)
    egd, online = sj.ExtraGradient(64, 0.0), sj.Online(64)
    sim_e, w0 = sj.prepare(p, DYNAMICS[dyn], egd, key=jax.random.key(5))
    sim_o, _ = sj.prepare(p, DYNAMICS[dyn], online, key=jax.random.key(5))
    grads = jax.jit(lambda w, k: (egd.grad(w, sim_e.data, k, sim_e), online.grad(w, sim_o.data, k, sim_o),
                                  sj.ExtraGradient(64, 1.0).grad(w, sim_e.data, k, sim_e)))
    for k, w in enumerate([w0, w0 + 0.5 * p.u, w0 - 0.3 * p.u]):
        g_e, g_o, g_1 = grads(w, k)
        scale = float(jnp.max(jnp.abs(g_o)))
        np.testing.assert_allclose(np.asarray(g_e), np.asarray(g_o), rtol=0, atol=1e-6 * scale)
        assert float(jnp.max(jnp.abs(g_1 - g_o))) > 1e-2 * scale


def test_sweep_by_name_equals_simulate():
    """`source = "extragradient"` with its `displacement` key: one configuration of a dict
    sweep equals `simulate` with the seed's keys."""
    config = dict(seeds=[1], d=16, kappa=[0.0, 4.0], r1=0.25, link="he3", activation="relu", noise=0.1,
                  dynamic="spherical", source="extragradient", batch=32, displacement=2.0,
                  w0="orthogonal", dt=0.1, steps=20, record=6)
    ds = sj.sweep(config, progress=False)
    keys = sj.config_keys(1)
    p = sj.make_problem(16, key=keys.problem, kappa=4.0, r1=0.25, link="he3", activation="relu", noise=0.1)
    alone = sj.simulate(p, sj.Spherical(), sj.ExtraGradient(32, 2.0), key=keys.run, dt=0.1, steps=20,
                        saveat=sj.SaveAt(steps=6), w0="orthogonal")
    np.testing.assert_allclose(ds["rho"].sel(seed=1, kappa=4.0).values, np.asarray(alone.rho), rtol=0, atol=1e-6)
    assert (ds["status"].values == "ok").all()


def _frame(p, w):
    """`(u, v, e3)` of the d-dimensional iterate, as the chain's frame picks them."""
    c, s = internal.spike_cosine(p)
    v = (p.covariance.theta - c * p.u) / s
    r = w - (w @ p.u) * p.u - (w @ v) * v
    return jnp.stack([p.u, v, r / jnp.linalg.norm(r)])


def _state(p, w):
    u, v, _ = _frame(p, w)
    return np.array([w @ u, w @ v, np.sqrt(max(float(w @ w - (w @ u) ** 2 - (w @ v) ** 2), 0.0))])


def _step(sim, dyn, w, grad, dt):
    return dyn.retract(w - dt * dyn.direction(w, grad, sim), w, sim)


CHAIN = [pytest.param("spherical", "squared", id="spherical-squared"),
         pytest.param("normalized", "correlation", id="normalized-correlation", marks=pytest.mark.slow),
         pytest.param("vanilla", "squared", id="vanilla-squared", marks=pytest.mark.slow),
         pytest.param("normalized", "squared", id="normalized-squared", marks=pytest.mark.slow)]


@pytest.mark.parametrize("dyn, loss", CHAIN)
def test_chain_follows_the_d_dimensional_run_on_the_same_samples(x64, dyn, loss):
    """`reduced=True`: fed each fresh batch's frame projections and the Cholesky factor of the
    Gram matrix of its orthogonal parts, the chain's state equals the d-dimensional EgD run's
    at every step, to float64 rounding."""
    d, b, dt, steps, disp = 20, 6, 0.3, 6, 4.0
    p = _problem(d, loss, link="h2", noise=0.3)
    dynamic, src = DYNAMICS[dyn], sj.ExtraGradient(b, disp)
    w0 = jax.random.normal(jax.random.key(2), (d,))
    sim_d, w = sj.prepare(p, dynamic, src, key=jax.random.key(0), w0=w0 / jnp.linalg.norm(w0))
    sim_c, x = sj.prepare(p, dynamic, src, key=jax.random.key(0), w0=w0 / jnp.linalg.norm(w0), reduced=True)
    assert isinstance(sim_c.source, sj.ExtraGradientChain) and x.shape == (3 + b,)
    @jax.jit
    def step(x, w, z, eps):  # one fresh batch: the chain fed its frame coordinates, the d-dimensional run the batch
        axes = _frame(p, w)
        frame = z @ axes.T
        perp = z - frame @ axes
        zc = jnp.concatenate([frame, jnp.linalg.cholesky(perp @ perp.T)], 1)
        x = internal.canonical(x)
        x = _step(sim_c, dynamic, x, sim_c.source.batch_grad(x, zc, sim_c.problem.labels(zc, eps), sim_c), dt)
        return x, _step(sim_d, dynamic, w, sim_d.source.batch_grad(w, z, p.labels(z, eps), sim_d), dt)

    key = jax.random.key(8)
    for _ in range(steps):
        kz, ke, key = jax.random.split(key, 3)
        x, w = step(x, w, jax.random.normal(kz, (b, d)), jax.random.normal(ke, (b,)))
        np.testing.assert_allclose(np.asarray(internal.canonical(x)[:3]), _state(p, w), atol=1e-10, rtol=0)


@pytest.mark.slow
def test_chain_runs_at_any_dimension(x64):
    """The chain's own draws: `reduced=True` at d = 2^30 runs, in float64, with finite overlaps."""
    p = sj.make_problem(2**30, key=jax.random.key(0), kappa=0.0, link="he3", activation="relu", reduced=True)
    tr = sj.simulate(p, sj.Spherical(), sj.ExtraGradient(4, 0.1), key=jax.random.key(1), dt=0.1, steps=3,
                     reduced=True, w0="orthogonal")
    assert int(tr.status) == 0 and np.isfinite(np.asarray(tr.rho)).all() and tr.w.shape == (3,)


@pytest.mark.parametrize("make, name", [
    (lambda: sj.ExtraGradient(0, 0.1), "batch"),
    (lambda: sj.ExtraGradient(8, float("nan")), "displacement"),
    (lambda: sj.ExtraGradient(8, "0.1"), "displacement"),
    (lambda: sj.ExtraGradient(8, True), "displacement"),
    (lambda: sj.load_config(dict(kappa=0.0, source="extragradient", batch=8, displacement=float("inf"))), "displacement"),
    (lambda: sj.load_config(dict(kappa=0.0, source="extragradient", batch=8)), "displacement"),
    (lambda: sj.load_config(dict(kappa=0.0, source="online", batch=8, displacement=0.1)), "displacement"),
    (lambda: sj.simulate(_problem(8), sj.Spherical(), sj.ExtraGradient(4, 0.1), key=jax.random.key(0),
                         steps=2, reduced=True, n_unlabelled=16), "reduced"),
])
def test_bad_values_are_refused_before_compiling(make, name):
    """Each refusal names the parameter and its value, and says what is allowed."""
    with pytest.raises(ValueError, match=f"^{name}=.*not allowed"):
        make()
