"""The exact chain of a width-m network trained by one-pass SGD (spikejax/_chain_network.py).

(a) pathwise: the chain fed the frame coordinates and the orthogonal parts of the very
samples a d-dimensional run draws follows that run's overlaps to 1e-9; (b) in law: the
chain's own draws against the d-dimensional engine, one step's moments and KS tests.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import spikejax as sj
from spikejax import internal


@pytest.fixture
def x64():
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _problem(d, activation="relu", link="h2"):
    return sj.make_problem(d, key=jax.random.key(3), link=link, activation=activation, kappa=4.0, r1=0.25, noise=0.3)


class FedDraw(internal.NetworkDraw):
    """A batch given by a d-dimensional run: the chain reads `Y = h^T z_perp` through its
    coordinates in an orthonormal basis of its rows' span (`Y = R^T Q^T`)."""

    zperp: jax.Array

    def orthogonal(self, h):
        return jnp.linalg.qr((h.T @ self.zperp).T, mode="r").T


def _invariants(W, u, v):
    return W @ u, W @ v, W @ W.T


def _pathwise(dynamic, network, d, batch=6, steps=20, dt=0.1, activation="relu", link="h2"):
    p = _problem(d, activation, link)
    key = jax.random.key(11)
    kw = dict(key=key, network=network, dt=dt, steps=steps)
    sim_d, w_d = sj.prepare(p, dynamic, sj.Online(batch), **kw)
    sim_c, w_c = sj.prepare(p, dynamic, sj.Online(batch), reduced=True, **kw)
    assert isinstance(sim_c.source, internal.NetworkChain)
    lay_d, lay_c = sim_d.dynamic.layout, sim_c.dynamic.layout
    m = network.width
    u = p.u
    c, s = internal.spike_cosine(p)
    v = (p.covariance.theta - c * u) / s
    pc = sim_c.problem

    @jax.jit
    def step(w_d, w_c, k):
        w_c = sim_c.source.frame(w_c, k, sim_c)
        Wd, _, _ = lay_d.unflatten(w_d)
        Wc, _, _ = lay_c.unflatten(w_c)
        perp = Wd - jnp.outer(Wd @ u, u) - jnp.outer(Wd @ v, v)
        Et = jnp.linalg.solve(Wc[:, 2:2 + m], perp)  # (m, d): the rows' perpendicular frame, Wd = Wc F^T
        F = jnp.concatenate([u[None], v[None], Et])  # (2 + m, d)
        z, y, _ = internal.samples(sim_d.source.inner, sim_d.data, k, sim_d)
        Z = z @ F.T
        eps = (y - p.target(z, p.covariance)) / p.noise
        draw = FedDraw(z=internal.pad(Z, internal.size(m)), eps=eps, bartlett=jnp.zeros((m, m)), zperp=z - Z @ F)
        g = jax.grad(internal.chain_risk)(w_c, draw, sim_c)
        w_c_new = sim_c.dynamic.retract(w_c - dt * sim_c.dynamic.direction(w_c, g, sim_c), w_c, sim_c)
        raw, _, _ = sim_d.solver.step(lambda x: sim_d.field(x, k), w_d, sim_d.dt, None)
        w_d_new = sim_d.dynamic.retract(raw, w_d, sim_d)
        return w_d_new, w_c_new, jnp.max(jnp.abs(pc.labels(draw.z, eps) - y))

    worst = 0.0
    for k in range(steps + 1):
        Wd, ad, bd = lay_d.unflatten(w_d)
        Wc, ac, bc = lay_c.unflatten(w_c)
        for x, y in zip(_invariants(Wd, u, v) + (ad, bd), _invariants(Wc, pc.u, jnp.eye(internal.size(m))[1]) + (ac, bc)):
            worst = max(worst, float(jnp.max(jnp.abs(x - y))))
        if k == steps:
            break
        w_d, w_c, label_err = step(w_d, w_c, k)
        assert float(label_err) < 1e-12
    # the default network observables agree too
    md, mc = sim_d.measure(w_d), sim_c.measure(w_c)
    for name in ("rho", "rho_mean", "cos_u", "cos_u_mean", "cos_theta", "norm", "risk", "a_norm"):
        assert abs(float(md[name]) - float(mc[name])) < 1e-9, name
    moved = float(jnp.max(jnp.abs(lay_d.unflatten(w_d)[0] @ u - lay_d.unflatten(sj.prepare(p, dynamic, sj.Online(batch),
                                                                                          **kw)[1])[0] @ u)))
    return worst, moved


@pytest.mark.parametrize(
    "dynamic, network, d",
    [
        (sj.Normalized(), sj.Network(width=2), 32),
        pytest.param(sj.Spherical(), sj.Network(width=3, second_layer="joint", biases="trained", bias_init=0.5), 48,
                     marks=pytest.mark.slow),
        pytest.param(sj.Preconditioned(), sj.Network(width=3, second_layer="joint", a_init="sign",
                                                     scaling="standard"), 64, marks=pytest.mark.slow),
        pytest.param(sj.Vanilla(), sj.Network(width=2, second_layer="joint", biases="trained", bias_init=1.0), 40,
                     marks=pytest.mark.slow),
    ],
    ids=["normalized-frozen", "spherical-joint", "preconditioned-joint", "vanilla-joint"],
)
def test_pathwise(x64, dynamic, network, d):
    t0 = time.perf_counter()
    worst, moved = _pathwise(dynamic, network, d)
    print(f"{type(dynamic).__name__} m={network.width} d={d}: max |chain - d-dim| = {worst:.2e}, "
          f"max |W u| moved {moved:.3f} ({time.perf_counter() - t0:.1f} s)")
    assert moved > 1e-2  # the rows did move
    assert worst < 1e-9


@pytest.mark.slow
def test_pathwise_tanh(x64):
    worst, _ = _pathwise(sj.Normalized(), sj.Network(width=2, second_layer="joint"), 32, activation="tanh", link="h3")
    assert worst < 1e-9


def _overlaps(net, sim):
    """`(W u, W v, W W^T)` in any coordinates (`v` the unit part of `theta` orthogonal to `u`)."""
    p = sim.problem
    u, th = p.u, p.covariance.theta
    v = th - (th @ u) * u
    v = v / jnp.linalg.norm(v)
    return {"wu": net.w @ u, "wv": net.w @ v, "gram": net.w @ net.w.T, "a": net.a}


def _runs(p, dynamic, network, keys, reduced, saveat, w0=None, dt=0.1, steps=1, batch=8):
    run = lambda k: sj.simulate(p, dynamic, sj.Online(batch), key=k, network=network, reduced=reduced, dt=dt,
                                steps=steps, saveat=saveat, w0=w0, init_key=None if w0 is None else k)
    return jax.jit(jax.vmap(run))(keys)


@pytest.mark.slow
def test_one_step_moments(x64):
    """One step from a fixed start: the mean and covariance of `(W u, W v, W W^T, a)`."""
    d, m, n = 48, 2, 4000
    p = _problem(d)
    w0 = jax.random.normal(jax.random.key(5), (m, d))
    w0 = w0 / jnp.linalg.norm(w0, axis=1, keepdims=True)
    w0 = w0.at[:, :].add(0.6 * p.u)  # start with some overlap so the step's drift is visible
    w0 = w0 / jnp.linalg.norm(w0, axis=1, keepdims=True)
    net = sj.Network(width=m, second_layer="joint")
    saveat = sj.SaveAt(steps=(0, 1), fn=_overlaps)
    keys = jax.random.split(jax.random.key(7), n)
    out = []
    for reduced in (False, True):
        tr = _runs(p, sj.Normalized(), net, keys, reduced, saveat, w0=w0, dt=0.5)
        ys = tr.ys
        g = ys["gram"][:, 1]
        out.append(np.concatenate([ys["wu"][:, 1], ys["wv"][:, 1], g[:, [0, 0, 1], [0, 1, 1]], ys["a"][:, 1]], axis=1))
    x, y = out
    mx, my = x.mean(0), y.mean(0)
    se = np.sqrt((x.var(0) + y.var(0)) / n)
    z = (mx - my) / se
    cx, cy = np.cov(x.T), np.cov(y.T)
    rel = np.abs(cx - cy).max() / np.abs(cx).max()
    print("mean d-dim", mx, "\nmean chain", my, "\nz", z, "\ncov rel. diff", rel)
    assert np.all(np.abs(z) < 4.5)
    assert rel < 0.15


@pytest.mark.slow
def test_in_law_ks(x64):
    """The chain's own draws against the d-dimensional engine at d = 64, 400 seeds each:
    two-sample KS tests of `rho_mean` and `risk` at two times."""
    d, n, steps = 64, 400, 200
    p = _problem(d)
    net = sj.Network(width=2, second_layer="joint")
    saveat = sj.SaveAt(steps=(0, 50, steps))
    t0 = time.perf_counter()
    a = _runs(p, sj.Normalized(), net, jax.random.split(jax.random.key(1), n), False, saveat, steps=steps)
    b = _runs(p, sj.Normalized(), net, jax.random.split(jax.random.key(2), n), True, saveat, steps=steps)
    pv = {}
    for name in ("rho_mean", "risk"):
        for i, k in ((1, 50), (2, steps)):
            pv[(name, k)] = stats.ks_2samp(np.asarray(a.ys[name][:, i]), np.asarray(b.ys[name][:, i])).pvalue
    print(f"KS p-values ({time.perf_counter() - t0:.1f} s):", {f"{k[0]}@{k[1]}": round(float(v), 3) for k, v in pv.items()})
    print("medians d-dim / chain:", float(np.median(a.ys["rho_mean"][:, 2])), float(np.median(b.ys["rho_mean"][:, 2])))
    assert min(pv.values()) > 1e-3


def test_refusals(x64):
    net = sj.Network(width=2)
    p = _problem(16)
    cases = [
        (sj.make_problem(16, key=jax.random.key(0), link="h2", kappa=4.0, inputs=sj.StudentT(5.0)), sj.Online(4), {}),
        (sj.make_problem(16, key=jax.random.key(0), link="h2", kappa=4.0, inputs=sj.Rademacher()), sj.Online(4), {}),
        (p, sj.Online(4), {"n_unlabelled": 32}),
        (p, sj.Reused(4, 2), {}),
        (p, sj.Online(4), {"solver": sj.Optax(__import__("optax").sgd(0.1))}),
        (sj.make_problem(3, key=jax.random.key(0), link="h2", kappa=4.0), sj.Online(4), {}),
    ]
    for prob, src, kw in cases:
        with pytest.raises(ValueError, match="reduced=True is not allowed with"):
            sj.simulate(prob, sj.Normalized(), src, key=jax.random.key(0), network=net, reduced=True, steps=2, **kw)
    # "auto" falls back to the d-dimensional engine where the chain is not exact
    tr = sj.simulate(p, sj.Normalized(), sj.Reused(4, 2), key=jax.random.key(0), network=net, reduced="auto", steps=2)
    assert tr.w.w.shape == (2, 16)


def test_refuses_float32():
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        p = _problem(16)
        with pytest.raises(ValueError, match="reduced=True is not allowed with float64 off"):
            sj.simulate(p, sj.Normalized(), sj.Online(4), key=jax.random.key(0), network=sj.Network(width=2),
                        reduced=True, steps=2)
    finally:
        jax.config.update("jax_enable_x64", old)


@pytest.mark.slow
def test_any_dimension(x64):
    """`make_problem(reduced=True)` with a network: the start is exact in law at any `d`
    (here 10^9, where no d-vector is formed) and the result is `(W u, W v, R^T)`."""
    p = sj.make_problem(10**9, key=jax.random.key(0), link="h2", activation="relu", kappa=4.0, r1=0.25, reduced=True)
    tr = sj.simulate(p, sj.Spherical(), sj.Online(8), key=jax.random.key(1), network=sj.Network(width=3),
                     reduced=True, dt=0.1, steps=5)
    assert tr.w.w.shape == (3, 5) and int(tr.status) == 0
    np.testing.assert_allclose(np.linalg.norm(tr.w.w, axis=1), 1.0, rtol=1e-12)
    assert float(tr.ys["rho"][0]) < 1e-3  # |rho(0)| ~ d^{-1/2} (kappa is not scaled with d here)


@pytest.mark.slow  # 10 s; the network chain stays checked pathwise (test_pathwise)
def test_start_law(x64):
    """`frame_start_rows` has the law of `frame_rows` of uniform rows: the Gram entries' moments."""
    d, m, n = 12, 3, 20000
    keys = jax.random.split(jax.random.key(0), n)
    a = jax.vmap(lambda k: internal.frame_start_rows(k, m, d, jnp.float64))(keys)
    p = _problem(d)

    def rows(k):
        w = jax.random.normal(k, (m, d))
        return internal.frame_rows(p, w / jnp.linalg.norm(w, axis=1, keepdims=True))[:, : 2 + m]

    b = jax.vmap(rows)(jax.random.split(jax.random.key(1), n))
    for f in (lambda w: w[:, :, 0], lambda w: w[:, :, 1] ** 2, lambda w: (w @ jnp.swapaxes(w, 1, 2))[:, 0, 1],
              lambda w: (w @ jnp.swapaxes(w, 1, 2))[:, 1, 2] ** 2):
        x, y = np.asarray(f(a)).ravel(), np.asarray(f(b)).ravel()
        assert stats.ks_2samp(x, y).pvalue > 1e-3
