"""Width-m networks: closed forms (committee machine), training as a whole, the reduction."""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj
from spikejax import committee_moments, network_risk, overlaps, truncation_bound
from spikejax.internal import committee_grad


def _erf():
    return sj.hermite_function(lambda x: jax.scipy.special.erf(x / jnp.sqrt(2.0)), name="erf")


ERF = _erf()


def _problem(link="h2", activation="relu", kappa=3.0, r1=0.25, noise=0.3, d=16, loss="squared"):
    p = sj.make_problem(d, key=jax.random.key(0), kappa=kappa, r1=r1, link="h1", activation="relu",
                        noise=noise, loss=loss)
    act = activation if isinstance(activation, sj.HermiteFunction) else sj.hermite_function(activation)
    lk = link if isinstance(link, sj.HermiteFunction) else sj.hermite_function(link)
    return eqx.tree_at(lambda q: (q.target.link, q.activation), p, (lk, act))


def _network(p, m=4, seed=1, length=1.0):
    """Rows tilted towards u (overlaps far from 0, pairwise correlations up to ~0.8), norms
    spread around `length`, biases and second layer of both signs."""
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    g = jax.random.normal(k1, (m, p.d))
    w = g / jnp.linalg.norm(g, axis=1, keepdims=True) + jnp.linspace(0.3, 1.2, m)[:, None] * p.u
    w = length * jnp.linspace(0.7, 1.2, m)[:, None] * w / jnp.linalg.norm(w, axis=1, keepdims=True)
    a = jax.random.normal(k2, (m,)) / jnp.sqrt(m)
    b = 0.8 * jax.random.normal(k3, (m,))
    return w, a, b


def _monte_carlo(p, w, a, b, cov, n=1_000_000, key=7):
    z, y = sj.draw(p, jax.random.key(key), n)
    s = p.covariance.sqrt(w) / sj.neuron_norm(w, cov)[:, None]
    feats = p.activation(z @ s.T + b)
    return feats, y


@pytest.mark.parametrize("activation,link,neuron", [
    (a, f, n) if i == 0 else pytest.param(a, f, n, marks=pytest.mark.slow)  # relu/plain by default
    for i, (a, f, n) in enumerate((a, f, n) for a, f in [("relu", "h2"), ("relu", "h3"), ("tanh", "h2"), ("tanh", "h1")]
                                  for n in ("plain", "sigma"))])
def test_committee_moments_against_monte_carlo(activation, link, neuron):
    p = _problem(link, activation)
    w, a, b = _network(p)
    cov = None if neuron == "plain" else p.covariance
    feats, y = _monte_carlo(p, w, a, b, cov)
    n = feats.shape[0]
    q, v = committee_moments(p, *overlaps(w, p, cov), b)
    # every moment within 4 standard errors (1e6 samples)
    prod = feats[:, :, None] * feats[:, None, :]
    mc_q, se_q = prod.mean(0), prod.std(0) / np.sqrt(n)
    assert np.all(np.abs(mc_q - q) < 4 * se_q), np.max(np.abs(mc_q - q) / se_q)
    cross = feats * y[:, None]
    mc_v, se_v = cross.mean(0), cross.std(0) / np.sqrt(n)
    assert np.all(np.abs(mc_v - v) < 4 * se_v), np.max(np.abs(mc_v - v) / se_v)
    # the whole network's squared loss
    losses = 0.5 * (feats @ a - y) ** 2
    exact = float(network_risk(w, a, b, p, cov))
    assert abs(float(losses.mean()) - exact) < 4 * float(losses.std() / np.sqrt(n))
    # the off-diagonal correlations are really off-diagonal (not a near-diagonal check)
    corr = overlaps(w, p, cov)[0] / np.sqrt(np.outer(np.diag(overlaps(w, p, cov)[0]), np.diag(overlaps(w, p, cov)[0])))
    assert np.max(np.abs(corr - np.eye(4))) > 0.5


def _saad_solla(p, w, a, cov):
    """The erf committee machine in closed form: `E[g(u) g(v)] = (2/pi) arcsin(C_uv /
    sqrt((1 + C_uu)(1 + C_vv)))` for `g(x) = erf(x / sqrt 2)` (Saad & Solla 1995), teacher
    `y = g(z_*)`, `z_*` of unit variance."""
    gram, cross, scale = overlaps(w, p, cov)
    sq = jnp.sqrt(jnp.diagonal(gram))
    cuv = gram / (sq[:, None] * sq[None, :]) * scale[:, None] * scale[None, :]
    cuu = scale**2
    q = 2 / jnp.pi * jnp.arcsin(cuv / jnp.sqrt((1 + cuu[:, None]) * (1 + cuu[None, :])))
    v = 2 / jnp.pi * jnp.arcsin(scale * cross / sq / jnp.sqrt((1 + cuu) * 2))
    tt = 2 / jnp.pi * jnp.arcsin(0.5)
    return q, v, 0.5 * a @ q @ a - a @ v + 0.5 * (tt + p.noise**2)


@pytest.mark.parametrize("neuron", [pytest.param("plain", marks=pytest.mark.slow), "sigma"])
def test_erf_committee_machine_matches_arcsin_formula(neuron):
    p = _problem(ERF, ERF, noise=0.2)
    w, a, _ = _network(p, m=5, length=0.8)
    b = jnp.zeros(5)
    cov = None if neuron == "plain" else p.covariance
    q, v = committee_moments(p, *overlaps(w, p, cov), b)
    q_ss, v_ss, r_ss = _saad_solla(p, w, a, cov)
    bound = truncation_bound(p, w, b, cov)
    assert np.all(np.abs(q - q_ss) <= bound + 1e-12)
    np.testing.assert_allclose(q, q_ss, atol=1e-8, rtol=0)
    np.testing.assert_allclose(v, v_ss, atol=1e-10, rtol=0)
    assert float(network_risk(w, a, b, p, cov)) == pytest.approx(float(r_ss), abs=1e-8)
    # gradients of the two closed forms agree too
    g1 = jax.grad(lambda w: network_risk(w, a, b, p, cov))(w)
    g2 = jax.grad(lambda w: _saad_solla(p, w, a, cov)[2])(w)
    np.testing.assert_allclose(g1, g2, atol=1e-7, rtol=0)
    # nearly parallel rows (|C| up to 0.99) of larger scale: the truncation error is visible,
    # within the Cauchy-Schwarz bound and close to it, and falls geometrically with the degree
    w2 = w / jnp.linalg.norm(w, axis=1, keepdims=True) + 3.0 * p.u
    w2 = 2.0 * w2 / jnp.linalg.norm(w2, axis=1, keepdims=True)
    q_ss2 = _saad_solla(p, w2, a, None)[0]
    errs = {}
    for k in (16, 32, 64):
        errs[k] = float(np.max(np.abs(committee_moments(p, *overlaps(w2, p, None), b, degree=k)[0] - q_ss2)))
        bound = float(np.max(truncation_bound(p, w2, b, None, degree=k)))
        assert errs[k] <= bound + 1e-14 and (k == 64 or errs[k] > bound / 10), (k, errs[k], bound)
    assert 1e-6 < errs[16] and 1e-10 < errs[32] < 1e-8 and errs[64] < 1e-13, errs


@pytest.mark.parametrize("activation,neuron", [("relu", "plain"), pytest.param("relu", "sigma", marks=pytest.mark.slow),
                                               pytest.param("tanh", "plain", marks=pytest.mark.slow), ("tanh", "sigma")])
def test_network_risk_gradients_against_finite_differences(activation, neuron):
    p = _problem("h2", activation, d=8)
    w, a, b = _network(p, m=3, seed=4)
    cov = None if neuron == "plain" else p.covariance
    f = jax.jit(lambda x: network_risk(x[:24].reshape(3, 8), x[24:27], x[27:], p, cov))
    x = jnp.concatenate([w.ravel(), a, b])
    g = np.asarray(jax.grad(f)(x))
    eps = 1e-6
    fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])
    np.testing.assert_allclose(g, fd, atol=1e-8, rtol=1e-6)
    assert np.min(np.abs(g[24:])) > 1e-4  # a and b really enter the risk


@pytest.mark.parametrize("activation,link,loss,neuron", [
    ("relu", "h2", "squared", "plain"),
    pytest.param("relu", "h3", "squared", "sigma", marks=pytest.mark.slow),  # one in two by default
    ("relu", "h2", "correlation", "plain"),
    pytest.param("tanh", "h2", "squared", "sigma", marks=pytest.mark.slow)])
def test_hand_written_network_gradient_equals_autodiff(activation, link, loss, neuron):
    """`committee_grad` (the population fast path: Stein's identity for the coefficients,
    four Horner sums) against `jax.grad` of the closed form, in w, a and b."""
    p = _problem(link, activation, loss=loss)
    w, a, b = _network(p, m=5)
    cov, normaliser = (None if neuron == "plain" else p.covariance), sj.NEURONS[neuron]()
    auto = jax.grad(lambda w, a, b: network_risk(w, a, b, p, cov), argnums=(0, 1, 2))(w, a, b)
    hand = committee_grad(w, a, b, p, normaliser)
    tol = 1e-14 if activation == "relu" else 1e-11  # tanh: two quadratures of the coefficients
    for x, y in zip(hand, auto):
        np.testing.assert_allclose(x, y, atol=tol, rtol=0)
        assert float(jnp.max(jnp.abs(y))) > 1e-2  # every block really enters
    # the degree is honoured: a truncation at K = 4 differs, and equals its own autodiff
    g4 = jax.grad(lambda w: network_risk(w, a, b, p, cov, degree=4))(w)
    np.testing.assert_allclose(committee_grad(w, a, b, p, normaliser, degree=4)[0], g4, atol=tol, rtol=0)
    if loss == "squared":
        assert float(jnp.max(jnp.abs(g4 - auto[0]))) > 1e-6



@pytest.mark.parametrize("activation,neuron", [pytest.param("relu", "plain", marks=pytest.mark.slow),
                                               pytest.param("tanh", "sigma", marks=pytest.mark.slow)])  # m = 5 by default
def test_hand_written_gradient_at_width_16_nearly_parallel_rows(activation, neuron):
    """The fast path at the benchmark's width (m = 16) where it is hardest: rows nearly
    parallel (|C| up to 0.99, the top Horner terms matter), biases up to |b| = 3 (large
    `t = b / s`: the Hermite recurrence of the ReLU coefficients at its largest); equal to
    autodiff of the closed form to 1e-10 in float64."""
    p = _problem("h3", activation, d=24)
    w, a, b = _network(p, m=16, seed=3)
    w = w + 4.0 * p.u  # correlations 0.9-0.99
    b = 3.0 * jnp.tanh(b)
    cov = None if neuron == "plain" else p.covariance
    corr = overlaps(w, p, cov)[0]
    corr = corr / np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    assert 0.99 < np.max(corr - 2 * np.eye(16)) < 1 and np.min(corr) > 0.9
    auto = jax.grad(lambda w, a, b: network_risk(w, a, b, p, cov), argnums=(0, 1, 2))(w, a, b)
    for x, y in zip(committee_grad(w, a, b, p, sj.NEURONS[neuron]()), auto):
        np.testing.assert_allclose(x, y, atol=1e-10, rtol=0)
        assert float(jnp.max(jnp.abs(y))) > 1e-4  # every block really enters


# ---------------------------------------------------------------- zero frozen biases: the arc-cosine path


@pytest.mark.slow
@pytest.mark.parametrize("neuron", ["plain", "sigma"])
def test_zero_bias_relu_closed_form_against_monte_carlo_and_the_series(neuron):
    """`b = None` (zero frozen biases) with ReLU: the arc-cosine kernel is exact. Against 1e6
    Monte Carlo samples within 4 standard errors, and against the Mehler series: at degree
    256 to rounding, at the default 32 off by its truncation (within the Cauchy-Schwarz bound;
    measured: 1e-8 at |C| <= 0.8; 4e-4 at K = 32 and 1e-8 at K = 256 for nearly parallel rows)."""
    p = _problem("h2", "relu", noise=0.2)
    w, a, _ = _network(p, m=4, length=1.3)
    cov = None if neuron == "plain" else p.covariance
    z = jnp.zeros(4)
    q, v = committee_moments(p, *overlaps(w, p, cov), None)
    feats, y = _monte_carlo(p, w, a, z, cov)
    prods = feats[:, :, None] * feats[:, None, :]
    mc_q, se_q = prods.mean(0), prods.std(0) / np.sqrt(feats.shape[0])
    assert np.all(np.abs(mc_q - q) < 4 * se_q), np.max(np.abs(mc_q - q) / se_q)
    losses = 0.5 * (feats @ a - y) ** 2
    exact = float(network_risk(w, a, None, p, cov))
    assert abs(float(losses.mean()) - exact) < 4 * float(losses.std() / np.sqrt(feats.shape[0]))
    series = {k: committee_moments(p, *overlaps(w, p, cov), z, degree=k) for k in (32, 256)}
    np.testing.assert_allclose(series[256][0], q, atol=1e-14, rtol=0)
    np.testing.assert_allclose(series[256][1], v, atol=1e-14, rtol=0)
    gap = float(np.max(np.abs(series[32][0] - q)))
    assert 1e-10 < gap <= float(np.max(truncation_bound(p, w, z, cov))) + 1e-15, gap
    # nearly parallel rows: the series at K = 32 is visibly off, the closed form is not
    w2 = w + 3.0 * p.u
    q2 = committee_moments(p, *overlaps(w2, p, cov), None)[0]
    err32 = float(np.max(np.abs(committee_moments(p, *overlaps(w2, p, cov), z)[0] - q2)))
    err256 = float(np.max(np.abs(committee_moments(p, *overlaps(w2, p, cov), z, degree=256)[0] - q2)))
    assert 1e-5 < err32 <= float(np.max(truncation_bound(p, w2, z, cov))), err32
    assert err256 <= float(np.max(truncation_bound(p, w2, z, cov, degree=256))) and err256 < err32 / 1e3, err256


def test_arccos_kernel_slope_is_finite_at_the_ends():
    """`k'(C) = (pi - arccos C) / (2 pi)` (the custom JVP) matches central differences of `k` inside (-1, 1)
    and stays finite at C = +-1, where autodiff of the formula would meet inf - inf."""
    from spikejax.internal import arccos_kernel
    c = jnp.linspace(-0.999, 0.999, 41)
    eps = 1e-6
    fd = (arccos_kernel(c + eps) - arccos_kernel(c - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.vmap(jax.grad(arccos_kernel))(c), fd, atol=1e-8, rtol=0)
    ends = jax.vmap(jax.grad(arccos_kernel))(jnp.array([-1.0, 1.0]))
    np.testing.assert_allclose(ends, [0.0, 0.5], atol=1e-15)
    np.testing.assert_allclose(arccos_kernel(jnp.array([-1.0, 0.0, 1.0])), [0.0, 1 / (2 * np.pi), 0.5], atol=1e-15)


@pytest.mark.parametrize("link,loss,neuron,m,parallel", [pytest.param("h2", "squared", "plain", 5, False, marks=pytest.mark.slow),
                                                         ("h3", "squared", "sigma", 5, False),
                                                         pytest.param("h2", "correlation", "plain", 5, False,
                                                                      marks=pytest.mark.slow),
                                                         pytest.param("h3", "squared", "plain", 16, True,
                                                                      marks=pytest.mark.slow)])
def test_zero_bias_relu_gradient_equals_autodiff(link, loss, neuron, m, parallel):
    """`committee_grad(w, a, None, ...)` (the arc-cosine path) against `jax.grad` of the
    closed-form risk to 1e-10 in float64, against central differences of the risk (which
    do not use the kernel's custom JVP), and against the series path at degree 256 (to 1e-9;
    measured 2.5e-6 for nearly parallel rows, where the series of `dQ/dC`, terms
    `(k + 1) c_{k+1}^2 C^k ~ k^{-3/2} C^k`, is still cut short at K = 256)."""
    p = _problem(link, "relu", loss=loss, d=24)
    w, a, _ = _network(p, m=m, seed=3)
    if parallel:
        w = w + 4.0 * p.u  # correlations 0.9-0.99
    cov = None if neuron == "plain" else p.covariance
    risk = lambda w, a: network_risk(w, a, None, p, cov)
    auto = jax.grad(risk, argnums=(0, 1))(w, a)
    hand = committee_grad(w, a, None, p, sj.NEURONS[neuron]())
    assert hand[2] is None
    for x, y in zip(hand[:2], auto):
        np.testing.assert_allclose(x, y, atol=1e-10, rtol=0)
        assert float(jnp.max(jnp.abs(y))) > 1e-3  # every block really enters
    eps = 1e-6
    e = jnp.zeros_like(w).at[0, :4].set(jnp.array([1.0, -0.5, 0.3, 2.0]))
    fd = (risk(w + eps * e, a) - risk(w - eps * e, a)) / (2 * eps)
    assert float(jnp.sum(hand[0] * e)) == pytest.approx(float(fd), abs=1e-8)
    series = committee_grad(w, a, jnp.zeros(m), p, sj.NEURONS[neuron](), degree=256)
    for x, y in zip(hand[:2], series[:2]):
        np.testing.assert_allclose(x, y, atol=1e-5 if parallel else 1e-9, rtol=0)


# ---------------------------------------------------------------- the network as training state

P64 = sj.make_problem(32, key=jax.random.key(0), kappa=5.0, r1=0.2, link="h2", noise=0.1)


@pytest.mark.parametrize("source,solver", [(sj.Population(), sj.Euler()),
                                           pytest.param(sj.Population(), sj.Dopri5(), marks=pytest.mark.slow),
                                           pytest.param(sj.Empirical(256), sj.Euler(), marks=pytest.mark.slow),
                                           (sj.Online(64), sj.Euler())])
def test_width_one_frozen_network_is_the_single_neuron(source, solver):
    kw = dict(key=jax.random.key(1), dt=0.1, steps=200, solver=solver)
    one = sj.simulate(P64, sj.Normalized(), source, **kw)
    net = sj.simulate(P64, sj.Normalized(), source, network=sj.Network(width=1), **kw)
    assert isinstance(net.w, sj.TwoLayer) and net.w.w.shape == (1, 32)
    np.testing.assert_array_equal(net.w.a, [1.0])
    np.testing.assert_array_equal(net.w.b, [0.0])
    # the same run to rounding: the same steps, weights and records (the closed-form and
    # autodiff gradients differ in the last bits only)
    assert int(net.num_steps) == int(one.num_steps)
    np.testing.assert_allclose(net.w.w[0], one.w, atol=1e-13, rtol=0)
    for name in ("rho", "cos_u", "risk", "train_risk"):
        np.testing.assert_allclose(net.ys[name], one.ys[name], atol=1e-13, rtol=0)
    assert float(one.rho[-1]) > float(one.rho[0]) + 0.3  # it moved


@pytest.mark.parametrize("dynamic,r1,biases", [pytest.param(sj.Spherical(), 0.0, "trained", marks=pytest.mark.slow),
                                               (sj.Normalized(), 0.3, "trained"),
                                               # zero biases: the trained case keeps the reduction covered
                                               pytest.param(sj.Normalized(), 0.3, "zero", marks=pytest.mark.slow),
                                               pytest.param(sj.Preconditioned(), 0.3, "trained", marks=pytest.mark.slow),
                                               pytest.param(sj.Vanilla(), 0.0, "trained", marks=pytest.mark.slow)])
def test_network_reduction_matches_full_dimension(dynamic, r1, biases):
    """The reduced (m + 2 coordinates) run equals the d-dimensional one in float64; with
    biases frozen at zero both take the exact arc-cosine path."""
    p = sj.make_problem(64, key=jax.random.key(0), kappa=20.0, r1=r1, link="h2", activation="relu", noise=0.1)
    bias = dict(biases="trained", bias_init=1.0) if biases == "trained" else dict(biases="frozen", bias_init=0.0)
    net = sj.Network(width=3, scaling="standard", second_layer="joint", lr_ratio=0.5, a_init="sign", **bias)
    kw = dict(key=jax.random.key(5), dt=0.1, steps=500, solver=sj.Euler(), network=net)
    full = jax.jit(lambda p: sj.simulate(p, dynamic, **kw))(p)
    red = jax.jit(lambda p: sj.simulate(p, dynamic, reduced=True, **kw))(p)
    sim, w0 = sj.prepare(p, dynamic, key=jax.random.key(5), network=net, reduced=True)
    assert sim.dynamic.layout.zero_b == (biases == "zero")
    assert w0.shape == (3 * 5 + 3 + 3 * (biases == "trained"),)  # m rows of m + 2 coordinates, a, b
    for name in ("rho", "cos_u", "risk", "rho_mean", "a_norm", "norm"):
        np.testing.assert_allclose(red.ys[name], full.ys[name], atol=1e-8, rtol=0)
    np.testing.assert_allclose(red.w.w, full.w.w, atol=1e-8, rtol=0)
    np.testing.assert_allclose(red.w.a, full.w.a, atol=1e-8, rtol=0)
    np.testing.assert_allclose(red.w.b, full.w.b, atol=1e-8, rtol=0)
    assert float(full.risk[-1]) < float(full.risk[0]) - 0.05  # it trained
    if biases == "trained":
        assert float(jnp.std(full.w.b)) > 0.1
    else:  # the exact path: the recorded risk is the closed form's, not the series'
        np.testing.assert_array_equal(full.w.b, 0.0)
        last, cov = full.w, sim.neuron.covariance(p.covariance, None)
        exact = sj.network_risk(last.w, last.a, None, p, cov)
        assert float(full.risk[-1]) == pytest.approx(float(exact), abs=1e-12)
        assert float(jnp.abs(exact - sj.network_risk(last.w, last.a, last.b, p, cov))) > 1e-12


def test_the_zero_bias_path_needs_biases_known_to_be_zero():
    """`Layout.zero_b` (the arc-cosine path) only for frozen biases with a concrete zero
    `bias_init`: a traced one (a swept value), a nonzero one or trained biases keep the series."""
    seen = []

    def zero_b(bias_init, biases="frozen"):
        net = sj.Network(width=2, biases=biases, bias_init=bias_init)
        seen.append(sj.prepare(P64, sj.Normalized(), key=jax.random.key(0), network=net)[0].dynamic.layout.zero_b)
        return jnp.zeros(())

    jax.eval_shape(zero_b, 0.0)
    zero_b(0.0), zero_b(0.5), zero_b(0.0, "trained"), zero_b(np.zeros(()))
    assert seen == [False, True, False, False, True]


def test_bad_network_arguments_are_refused():
    for kwargs, name in [(dict(width=0), "width=0"), (dict(scaling="ntk"), "scaling='ntk'"),
                         (dict(lr_ratio=0.0), "lr_ratio=0.0"), (dict(lr_ratio=-1.0), "lr_ratio=-1.0"),
                         (dict(second_layer="ratio"), "second_layer='ratio'"), (dict(biases="free"), "biases='free'")]:
        with pytest.raises(ValueError, match=f"{name} is not allowed"):
            sj.Network(**kwargs)
    with pytest.raises(ValueError, match="network=4 is not allowed"):
        sj.simulate(P64, sj.Normalized(), key=jax.random.key(0), network=4)


def test_scalings_and_learning_rates():
    for scaling, gamma in (("mean_field", 1.0), ("standard", 0.5)):
        net = sj.Network(width=16, scaling=scaling, second_layer="joint", lr_ratio=2.0)
        sim, w0 = sj.prepare(P64, sj.Normalized(), key=jax.random.key(0), network=net)
        lay = sim.dynamic.layout
        np.testing.assert_allclose(sj.network_of(w0, sim).a, np.full(16, 16.0**-gamma))
        assert float(lay.lr_w) == pytest.approx(16.0**gamma) and float(lay.lr_a) == pytest.approx(2.0 / 16.0**gamma)
        assert w0.shape == (16 * 32 + 16,)  # rows and a; the frozen biases are not state


def test_network_observables_and_overlap_matrix():
    net = sj.Network(width=4, second_layer="joint", a_init="sign")
    tr = sj.simulate(P64, sj.Normalized(), key=jax.random.key(2), dt=0.2, steps=300, network=net,
                     solver=sj.Euler(), saveat=sj.SaveAt(steps=5))
    assert set(tr.ys) == set(sj.NETWORK_METRICS)
    w = tr.w.w
    cov = P64.covariance
    rho = np.abs(cov.inner(w, P64.u) / (cov.norm(w) * cov.norm(P64.u)))
    assert float(tr.rho[-1]) == pytest.approx(rho.max(), abs=1e-12)
    assert float(tr.ys["rho_mean"][-1]) == pytest.approx(rho.mean(), abs=1e-12)
    assert float(tr.ys["rho_frac"][-1]) == pytest.approx(np.mean(rho >= 0.9))
    assert float(tr.ys["a_norm"][-1]) == pytest.approx(float(jnp.linalg.norm(tr.w.a)), abs=1e-12)
    exact = float(network_risk(w, tr.w.a, tr.w.b, P64, cov))
    assert float(tr.ys["excess_risk"][-1]) == pytest.approx(exact - 0.5 * 0.1**2, abs=1e-12)
    assert float(tr.risk[-1]) < float(tr.risk[0])
    # the overlap matrix on request
    om = sj.simulate(P64, sj.Normalized(), key=jax.random.key(2), dt=0.2, steps=300, network=net,
                     solver=sj.Euler(), saveat=sj.SaveAt(steps=5, fn=sj.overlap_matrix))
    assert om.ys["gram"].shape == (5, 6, 6) and om.ys["q"].shape == (5, 4, 4)
    g = om.ys["gram"][-1]
    np.testing.assert_allclose(g[:4, 4] / np.sqrt(np.diag(g)[:4] * g[4, 4]), cov.inner(w, P64.u) / (
        cov.norm(w) * cov.norm(P64.u)), atol=1e-12)


@pytest.mark.slow
def test_jointly_trained_width_four_relu_network_learns_h2():
    """d = 64, h2 target (E[y^2] = 1), width 4, ReLU, standard scaling, both layers and the
    biases trained: population excess risk below 1% of E[y^2]. (The best width-4 ReLU fit of
    h2 has excess 0.0067; from this initialisation about 5 seeds in 8 reach <= 0.0084, the
    rest stop at width-3 local minima, 0.017 or 0.10: see docs/decisions.md.)"""
    p = sj.make_problem(64, key=jax.random.key(0), kappa=3.0, r1=0.0, link="h2", noise=0.0)
    net = sj.Network(width=4, scaling="standard", second_layer="joint", biases="trained", bias_init=2.0)
    key = jax.random.split(jax.random.key(0), 8)[0]
    tr = jax.jit(lambda p: sj.simulate(p, sj.Normalized(), key=key, dt=0.05, steps=20000, solver=sj.Euler(),
                                       network=net, saveat=sj.SaveAt(steps=4)))(p)
    ey2 = float(p.link.sq_norm + p.noise**2)
    assert float(tr.ys["excess_risk"][0]) > 0.2 * ey2
    assert float(tr.ys["excess_risk"][-1]) < 0.01 * ey2
    assert float(tr.ys["rho_frac"][-1]) == 1.0  # every neuron found u (up to sign)
    assert int(tr.status) == 0


def _networks_experiment():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "networks.py")
    spec = importlib.util.spec_from_file_location("networks_experiment", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_joint_vs_layerwise_n_star_interpolation():
    """experiments/networks.py's n*: the known crossing of a power law (exact: linear in
    log n and log error), the grid's first point when it starts below, NaN when never below,
    and the first crossing when the curve dips below, rises and falls again."""
    ex = _networks_experiment()
    ns = np.array([128, 256, 512, 1024, 2048, 4096])
    err = (ns / 300.0) ** -1.5
    np.testing.assert_allclose(ex.n_star_interp(ns, err, 0.5), 300.0 * 0.5 ** (-1 / 1.5), rtol=1e-12)
    assert ex.n_star_interp(ns, err, 10.0) == 128.0
    assert np.isnan(ex.n_star_interp(ns, err, 1e-6))
    bumpy = np.array([1.0, 0.4, 0.05, 0.2, 0.01, 0.01])  # first below 0.1 between 256 and 512
    np.testing.assert_allclose(ex.n_star_interp(ns, bumpy, 0.1), 256 * 2 ** (np.log(4) / np.log(8)), rtol=1e-12)


@pytest.mark.slow
def test_a_network_sweep_records_the_network_observables():
    """`sj.sweep(network=True)` records every `NETWORK_METRICS` entry; the final records equal
    numpy on the same run's weights and samples (`sj.simulate` with the sweep's keys): the
    per-neuron |rho_j| and |cos_u_j| summarised as max, mean and fraction >= 0.9, ||a||, the
    training risk and the population excess risk over tau^2 / 2."""
    cfg = dict(seeds=2, d=16, kappa=3.0, r1=0.0, noise=0.2, dt=0.3, steps=200, record=4, solver="euler",
               precision="float64", source="empirical", n=128, network=True, width=4, scaling="standard",
               second_layer="joint", biases="trained", bias_init=1.0)
    ds = sj.sweep(cfg, progress=False)
    assert set(sj.NETWORK_METRICS) <= set(ds.data_vars)
    net = sj.Network(width=4, scaling="standard", second_layer="joint", biases="trained", bias_init=1.0)
    for seed in range(2):
        keys = sj.config_keys(jax.random.key(seed))
        p = sj.make_problem(16, key=keys.problem, kappa=3.0, r1=0.0, noise=0.2)
        tr = sj.simulate(p, sj.Normalized(), sj.Empirical(128), key=keys.run, dt=0.3, steps=200, solver=sj.Euler(),
                         network=net, saveat=sj.SaveAt(steps=4))
        W, a, b = (np.asarray(x) for x in (tr.w.w, tr.w.a, tr.w.b))
        sig = np.asarray(p.covariance.apply(jnp.asarray(W)))
        u, th = np.asarray(p.u), np.asarray(p.covariance.theta)
        rho = np.abs(sig @ u) / np.sqrt(np.sum(W * sig, 1) * (u @ np.asarray(p.covariance.apply(p.u))))
        cos = np.abs(W @ u) / np.linalg.norm(W, axis=1)
        z, y = (np.asarray(x) for x in sj.Empirical(128).init(jax.random.split(keys.run, 3)[1], p)[:2])
        pre = z @ np.asarray(p.covariance.sqrt(jnp.asarray(W))).T / np.sqrt(np.sum(W * sig, 1))
        train = np.mean(0.5 * (np.maximum(pre + b, 0) @ a - y) ** 2)
        fin = ds.sel(seed=seed).isel(step=-1)
        want = {"rho": rho.max(), "rho_mean": rho.mean(), "rho_frac": np.mean(rho >= 0.9), "cos_u": cos.max(),
                "cos_u_mean": cos.mean(), "cos_u_frac": np.mean(cos >= 0.9), "cos_theta": (np.abs(W @ th) /
                np.linalg.norm(W, axis=1)).max(), "norm": np.linalg.norm(W, axis=1).mean(),
                "a_norm": np.linalg.norm(a), "train_risk": train,
                "excess_risk": float(network_risk(tr.w.w, tr.w.a, tr.w.b, p, p.covariance)) - 0.5 * 0.2**2}
        for name, v in want.items():
            assert float(fin[name]) == pytest.approx(v, abs=1e-10), name
    fracs = np.asarray(ds["rho_frac"]).ravel()
    assert np.any((fracs > 0) & (fracs < 1)), fracs  # some neurons above 0.9, some not: the fraction is not trivial
