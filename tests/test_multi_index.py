"""Multi-index targets: construction, leap exponents, closed forms against Monte Carlo,
k = 1 against the single-index engine, the reduced form, subspace observables."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj
from spikejax import committee_moments, network_risk, overlaps

D = 8


def _two_spikes(d=D, seed=0):
    """Two spikes: theta_1 half along the first target direction's e_1, theta_2 orthogonal."""
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(seed), (d, 4)))
    e = q.T
    thetas = jnp.stack([0.5 * e[0] + math.sqrt(0.75) * e[3], e[2]])
    kappas = jnp.array([6.0, 2.0])
    return sj.MultiSpikeCovariance(thetas=thetas, kappas=kappas, scale=1 / (1 + kappas.max())), e


def _problem(g, k=3, activation="relu", noise=0.0, seed=0):
    cov, _ = _two_spikes(seed=seed)
    U0 = jax.random.normal(jax.random.key(seed + 10), (k, D))
    target = sj.MultiIndex.make(U0, g, cov=cov)
    return sj.Problem(covariance=cov, target=target, activation=sj.hermite_function(activation),
                      noise=jnp.asarray(noise))


# ---------------------------------------------------------------- construction and errors


def test_builtin_expansions_and_sigma_orthonormal_rows():
    assert sj.staircase(3) == {(1, 0, 0): 1.0, (1, 1, 0): 1.0, (1, 1, 1): 1.0}
    assert sj.parity(3) == {(1, 1, 1): 1.0}
    assert sj.sum_h2(2) == {(2, 0): 1.0, (0, 2): 1.0}
    assert sj.product_h2(2) == {(2, 2): 1.0}
    p = _problem("staircase")
    U, cov = p.target.U, p.covariance
    np.testing.assert_allclose(U @ cov.apply(U).T, np.eye(3), atol=1e-12)
    # Gram-Schmidt in order: u_1 keeps its direction
    U0 = jax.random.normal(jax.random.key(10), (3, D))
    assert abs(float(U[0] @ U0[0]) / float(jnp.linalg.norm(U[0]) * jnp.linalg.norm(U0[0]))) > 1 - 1e-12
    # the labels are the staircase of z_i = <u_i, x>, iid N(0, 1)
    z, y = sj.draw(p, jax.random.key(1), 200_000)
    zs = np.asarray(p.target.arguments(z, cov))
    np.testing.assert_allclose(np.asarray(y), zs[0] + zs[0] * zs[1] + zs[0] * zs[1] * zs[2], atol=1e-12)
    assert np.max(np.abs(np.cov(zs) - np.eye(3))) < 0.015
    assert p.target.degree == 3 and float(p.target.second_moment()) == 3.0


def test_callable_target_coefficients_by_quadrature():
    g = lambda z1, z2: z1 * z2 + z1**2 - 1 + jnp.tanh(z2)  # noqa: E731
    t = sj.MultiIndex(jnp.eye(2, 5), g, degree=5)
    coeffs = t.expansion()
    assert abs(coeffs[(1, 1)] - 1.0) < 1e-12 and abs(coeffs[(2, 0)] - math.sqrt(2)) < 1e-12
    tanh_c = sj.hermite_function("tanh").coeffs
    assert abs(coeffs[(0, 1)] - tanh_c[1]) < 1e-10 and abs(coeffs[(0, 3)] - tanh_c[3]) < 1e-10
    assert all(a[0] == 0 or a in ((1, 1), (2, 0)) for a in coeffs)  # no spurious mixed terms
    # E[g^2] by quadrature directly: 1 + 2 + E[tanh^2]
    assert abs(float(t.second_moment()) - (3 + float(sj.hermite_function("tanh").sq_norm))) < 1e-10
    # labels use the callable itself
    z = jax.random.normal(jax.random.key(0), (50, 5))
    cov = sj.SpikedCovariance.make(jnp.eye(5)[4], 0.0)
    np.testing.assert_allclose(t(z, cov), g(z[:, 0], z[:, 1]), atol=1e-12)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: sj.MultiIndex(jnp.array([[1.0, 0, 0], [2.0, 0, 0]]), "staircase"), "not of full rank"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), {(1, 0, 0): 1.0}), "k=2"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), {(1, -1): 1.0}), "integers >= 0"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), {(1, 0): 1.0, (1,): 2.0}), "length"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), {(1, 0): float("nan")}), "finite"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), "parity4"), "sum_h2"),
        (lambda: sj.MultiIndex(jnp.eye(2, 4), lambda a, b: a * b, degree=0), "degree"),
        (lambda: sj.MultiIndex.make(jnp.array([[1.0, 0, 0], [1.0, 1e-3, 0]]), "parity", orthonormalise=False),
         "Sigma-orthogonal"),
    ],
)
def test_bad_targets_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_problem_refuses_rows_not_sigma_orthogonal():
    cov, e = _two_spikes()
    # Euclidean-orthonormal rows, but theta_1 couples e_0 and e_3
    target = sj.MultiIndex(jnp.stack([e[0], e[3]]), "sum_h2")
    with pytest.raises(ValueError, match=r"Sigma-orthogonal \(largest \|Sigma-correlation\| between two rows 0.701 > 1e-05"):
        sj.Problem(covariance=cov, target=target, activation=sj.hermite_function("relu"), noise=jnp.asarray(0.0))
    with pytest.raises(AttributeError, match="no single u"):
        target.u
    # the check also runs at trace time inside a user's jit (closed-over concrete arrays)
    with pytest.raises(ValueError, match="Sigma-orthogonal"):
        jax.jit(lambda x: (target.check(cov), x)[1])(1.0)
    good = _problem("parity")
    assert float(jax.jit(lambda x: (good.target.check(good.covariance), x)[1])(1.0)) == 1.0


# ---------------------------------------------------------------- leap exponents


def test_leap_and_information_exponents():
    assert sj.leap_exponent(sj.staircase(3)) == 1
    assert sj.leap_exponent(sj.parity(3)) == 3
    assert sj.leap_exponent(sj.sum_h2(2)) == 2 and sj.leap_exponent(sj.sum_h2(4)) == 2
    assert sj.leap_exponent(sj.product_h2(2)) == 4
    assert sj.leap_exponent({(1, 0): 1.0, (0, 3): 0.5}) == 3  # h_3(z_2) alone: its degree
    assert sj.leap_exponent({(1, 0): 1.0, (1, 2): 0.5, (0, 3): 0.5}) == 2  # z_1 h_2(z_2) lowers it
    assert sj.information_exponents(sj.staircase(3)) == (1, None, None)
    assert sj.information_exponents(sj.sum_h2(2)) == (2, 2)
    assert sj.information_exponents(sj.parity(3)) == (None, None, None)
    assert sj.information_exponents({(3, 0): 1.0, (1, 0): 0.1, (1, 1): 1.0}) == (1, None)
    assert sj.leap_order(sj.staircase(3)) == [(1, 1), (2, 1), (3, 1)]
    assert sj.leap_order(sj.parity(3)) == [(1, 3)] * 3
    assert sj.leap_order({(0, 1, 0): 1.0, (0, 1, 2): 1.0, (0, 0, 0): 2.0}) == [None, (1, 1), (2, 2)]
    p = _problem("staircase")
    assert sj.leap_exponent(p.target) == 1 and sj.information_exponents(p.target) == (1, None, None)


# ---------------------------------------------------------------- closed forms


def _random_expansion(k=2, seed=3):
    rng = np.random.default_rng(seed)
    alphas = {tuple(int(a) for a in rng.integers(0, 3, size=k)) for _ in range(6)} - {(0,) * k}
    return {a: float(rng.normal()) for a in sorted(alphas)}


def _rows(p, m=3, seed=2):
    """Rows tilted towards the directions: overlaps far from 0."""
    g = jax.random.normal(jax.random.key(seed), (m, D))
    mix = jax.random.normal(jax.random.key(seed + 1), (m, p.target.k))
    w = g / jnp.linalg.norm(g, axis=1, keepdims=True) + 2.0 * mix @ p.target.U
    return w / jnp.linalg.norm(w, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "g,k,activation",
    [("staircase", 3, "relu"), pytest.param("parity", 3, "relu", marks=pytest.mark.slow),
     pytest.param("sum_h2", 2, "relu", marks=pytest.mark.slow), pytest.param("product_h2", 2, "tanh", marks=pytest.mark.slow),
     (_random_expansion(), 2, "relu")],  # two of five by default
)
def test_cross_moments_and_second_moment_against_monte_carlo(g, k, activation):
    p = _problem(g, k=k, activation=activation)
    w = _rows(p)
    b = jnp.array([0.4, -0.7, 0.1])
    cov = p.covariance  # the sigma neuron: scales 1
    z, y = sj.draw(p, jax.random.key(7), 1_000_000)
    feats = np.asarray(p.activation(z @ (cov.sqrt(w) / cov.norm(w)[:, None]).T + b))
    y = np.asarray(y)
    n = y.shape[0]
    _, v = committee_moments(p, *overlaps(w, p, cov), b)
    cross = feats * y[:, None]
    se = cross.std(0) / np.sqrt(n)
    err = np.abs(cross.mean(0) - np.asarray(v)) / se
    assert np.all(err < 4), err
    assert np.max(np.abs(np.asarray(v)) / se) > 10  # not a check of zeros
    y2 = y**2
    assert abs(y2.mean() - float(p.target.second_moment())) < 4 * y2.std() / np.sqrt(n)
    assert float(p.target.second_moment()) == pytest.approx(sum(c * c for c in p.target.expansion().values()))


@pytest.mark.slow  # 8.5 s; network risks against Monte Carlo stay in test_networks.py
def test_width_three_network_risk_against_monte_carlo():
    p = _problem("staircase", noise=0.2)
    w = 1.3 * _rows(p, seed=5)
    a, b = jnp.array([0.9, -0.6, 0.5]), jnp.array([0.3, -0.2, 0.5])
    z, y = sj.draw(p, jax.random.key(8), 1_000_000)
    out = np.asarray(p.activation(z @ p.covariance.sqrt(w).T + b)) @ np.asarray(a)  # plain neuron
    losses = 0.5 * (out - np.asarray(y)) ** 2
    exact = float(network_risk(w, a, b, p, None))
    assert abs(losses.mean() - exact) < 4 * losses.std() / np.sqrt(losses.size), (losses.mean(), exact)
    # the single-neuron closed form is the width-1 network's
    one = float(sj.population_risk(w[0], p, None))
    assert one == pytest.approx(float(network_risk(w[:1], jnp.ones(1), jnp.zeros(1), p, None)), abs=1e-14)


def test_single_index_cross_moment_is_the_mehler_series():
    p = sj.make_problem(D, key=jax.random.key(0), kappa=2.0, r1=0.2, link="h3", activation="tanh")
    rho = jnp.array([0.3, -0.6])
    c = jnp.array([[0.1, 0.5, 0.2, -0.3], [0.0, 1.0, 0.4, 0.2]])
    expect = c[:, 3] * rho**3  # alpha = e_3
    np.testing.assert_allclose(p.target.cross_moment(rho, c), expect, atol=1e-15)
    mi = sj.MultiIndex(p.u[None], {(3,): 1.0})
    np.testing.assert_allclose(mi.cross_moment(rho[:, None], c), expect, atol=1e-15)


# ---------------------------------------------------------------- k = 1 is the single-index engine


@pytest.mark.slow  # 27 s: eight compiled runs; the k-index engine stays checked against Monte Carlo and the reduced form
def test_one_direction_reproduces_the_single_index_engine():
    p = sj.make_problem(12, key=jax.random.key(0), kappa=3.0, r1=0.25, link="h2")
    mi = sj.Problem(covariance=p.covariance, target=sj.MultiIndex(p.u[None], {(2,): 1.0}),
                    activation=p.activation, noise=jnp.asarray(0.1))
    p = sj.Problem(covariance=p.covariance, target=p.target, activation=p.activation, noise=jnp.asarray(0.1))
    z, y = sj.draw(p, jax.random.key(4), 1000)
    z2, y2 = sj.draw(mi, jax.random.key(4), 1000)
    np.testing.assert_allclose(y2, y, rtol=0, atol=1e-12)
    assert float(jnp.std(y)) > 0.5
    fn = lambda w, sim: {"w": w}  # noqa: E731
    kw = dict(key=jax.random.key(3), dt=0.05, steps=60, saveat=sj.SaveAt(steps=6, fn=fn))
    for source, solver in ((sj.Empirical(256), sj.Euler()), (sj.Population(), sj.Euler())):
        a = sj.simulate(p, sj.Normalized(), source, solver=solver, **kw)
        b = sj.simulate(mi, sj.Normalized(), source, solver=solver, **kw)
        np.testing.assert_allclose(b.ys["w"], a.ys["w"], rtol=0, atol=1e-10)
        assert float(jnp.max(jnp.abs(a.w - a.ys["w"][0]))) > 0.05  # it moved
    # the default observables of k = 1 carry cos_u and rho of its one direction, as the single index's
    kw["saveat"] = sj.SaveAt(steps=6, passages={"rho": (0.2,), "cos_u": (0.2,)})
    for network in (None, sj.Network(width=2)):
        a = sj.simulate(p, sj.Normalized(), sj.Population(), solver=sj.Euler(), network=network, **kw)
        b = sj.simulate(mi, sj.Normalized(), sj.Population(), solver=sj.Euler(), network=network, **kw)
        for name in ("cos_u", "rho"):
            np.testing.assert_allclose(b.ys[name], a.ys[name], rtol=0, atol=1e-10)
            np.testing.assert_array_equal(b.passages[name], a.passages[name])
        assert float(abs(a.ys["rho"][-1])) > float(abs(a.ys["rho"][0])) + 0.05  # it moved
        assert "overlap" in b.ys  # and the subspace observables stay


# ---------------------------------------------------------------- the reduced form


@pytest.mark.parametrize("width", [None, pytest.param(3, marks=pytest.mark.slow)])
def test_reduced_form_matches_full_dimension(width):
    p = _problem("staircase", noise=0.1)
    net = None if width is None else sj.Network(width=width, second_layer="joint", biases="trained", bias_init=0.5)
    kw = dict(key=jax.random.key(2), solver=sj.Euler(), dt=0.1, steps=300, network=net,
              saveat=sj.SaveAt(steps=8, fn=sj.subspace_metrics))
    full = sj.simulate(p, sj.Normalized(), sj.Population(), **kw)
    red = sj.simulate(p, sj.Normalized(), sj.Population(), reduced=True, **kw)
    wf = full.w if width is None else full.w.w
    wr = red.w if width is None else red.w.w
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-8)
    for key in ("best", "risk", "principal_cos"):
        np.testing.assert_allclose(red.ys[key], full.ys[key], rtol=0, atol=1e-8)
    assert float(full.ys["risk"][-1]) < float(full.ys["risk"][0]) - 0.05  # it learned something


# ---------------------------------------------------------------- sources and observables


@pytest.mark.slow  # 11 s; Reused against Empirical stays in test_sources.py
def test_reused_batch_for_every_step_is_the_empirical_run():
    p = _problem("sum_h2", k=2)
    kw = dict(key=jax.random.key(1), dt=0.2, steps=10, saveat=sj.SaveAt(steps=2, fn=sj.subspace_metrics))
    a = sj.simulate(p, sj.Normalized(), sj.Empirical(128), **kw)
    b = sj.simulate(p, sj.Normalized(), sj.Reused(128, reuse=10), **kw)
    np.testing.assert_allclose(b.w, a.w, atol=1e-12)
    c = sj.simulate(p, sj.Normalized(), sj.Online(128), **kw)
    assert float(jnp.max(jnp.abs(c.w - a.w))) > 1e-4  # fresh batches: another run
    assert np.isnan(float(c.ys["train_risk"][-1])) and np.isfinite(float(a.ys["train_risk"][-1]))


def test_subspace_observables():
    p = _problem("staircase")
    U, cov = p.target.U, p.covariance
    # rows that are the directions themselves (scaled, permuted): M is a scaled permutation
    w = jnp.stack([2.0 * U[1], -U[0], 0.5 * U[2], U[0] + U[1]])
    m = np.asarray(sj.overlap_matrix_sigma(w, p))
    expect = np.array([[0, -1, 0, 1 / math.sqrt(2)], [1, 0, 0, 1 / math.sqrt(2)], [0, 0, 1, 0]])
    np.testing.assert_allclose(m, expect, atol=1e-12)
    np.testing.assert_allclose(sj.principal_cosines(w, p), np.ones(3), atol=1e-10)
    # two neurons inside span U cover two of its three dimensions: cosines 1, 1, 0
    w2 = jnp.stack([U[0], (U[1] + U[2]) / math.sqrt(2)])
    np.testing.assert_allclose(sj.principal_cosines(w2, p), [1.0, 1.0, 0.0], atol=1e-10)
    # a neuron half out of span U: cos of its angle, 1/sqrt(2) (Sigma-unit e Sigma-orthogonal to U)
    e = jax.random.normal(jax.random.key(9), (D,))
    e = e - (U @ cov.apply(e)) @ U
    e = e / cov.norm(e)
    np.testing.assert_allclose(sj.principal_cosines(jnp.stack([U[1] + e]), p), [1 / math.sqrt(2), 0, 0], atol=1e-10)
    np.testing.assert_allclose(sj.coverage(jnp.stack([U[1] + e]), p), [0, 1 / math.sqrt(2), 0], atol=1e-10)
    np.testing.assert_allclose(sj.coverage(w2, p), [1, 1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-10)
    # Gram [[2, -1], [-1, 2]]: |P u_1|^2 = e_1^T G^{-1} e_1 = 2/3
    np.testing.assert_allclose(sj.coverage(jnp.stack([U[0] + e, U[1] - e]), p), [math.sqrt(2 / 3)] * 2 + [0],
                               atol=1e-10)
    sim = type("S", (), {"problem": p, "neuron_cov": cov, "source": sj.Population(), "data": None})()
    out = sj.subspace_metrics(w2[0], sim)
    np.testing.assert_allclose(out["best"], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out["singular_values"], [1.0], atol=1e-12)
    passes = sj.direction_overlaps(w2, sim)
    assert set(passes) == {"u1", "u2", "u3", "cover1", "cover2", "cover3", "subspace"}
    np.testing.assert_allclose([passes[f"cover{i}"] for i in (1, 2, 3)], [1, 1 / math.sqrt(2), 1 / math.sqrt(2)],
                               atol=1e-10)
    assert abs(float(passes["u2"]) - 1 / math.sqrt(2)) < 1e-12 and abs(float(passes["subspace"])) < 1e-10


# ---------------------------------------------------------------- several spikes


def test_multi_index_problem_with_aligned_and_orthogonal_spikes():
    d = 16
    p = sj.multi_index_problem(d, key=jax.random.key(0), g="staircase", k=3,
                               spikes=[{"align": 1, "r1": 0.25, "r2": 0.5}, (None, None, 0.75)])
    cov, U = p.covariance, p.target.U
    np.testing.assert_allclose(U @ cov.apply(U).T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cov.kappas, [d**0.5, d**0.75], rtol=1e-12)
    assert float(cov.scale) == pytest.approx(1 / (1 + d**0.75))
    align = sj.spike_alignment(p)
    np.testing.assert_allclose(align, [[0, d**-0.25, 0], [0, 0, 0]], atol=1e-12)
    # the aligned direction has the larger Sigma-variance: its Euclidean norm is smaller
    norms = np.linalg.norm(np.asarray(U), axis=1)
    assert norms[1] < norms[0] - 0.1 and abs(norms[0] - norms[2]) < 1e-12
    iso = sj.multi_index_problem(8, key=jax.random.key(0), g=sj.sum_h2(2))
    np.testing.assert_allclose(iso.target.U @ iso.target.U.T, np.eye(2), atol=1e-12)
    assert iso.covariance.thetas.shape == (0, 8) and float(iso.covariance.scale) == 1.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(spikes=[(0, 0.1, 0.5), (0, 0.2, 0.5)]), "at most one spike"),
        (dict(spikes=[(None, 0.1, 0.5)]), "no r1"),
        (dict(spikes=[(3, 0.1, 0.5)]), r"direction index in \[0, 2\]"),
        (dict(spikes=[(0, 0.7, 0.5)]), r"spikes\[0\].r1=0.7"),
        (dict(spikes=[{"align": 0, "r1": 0.1}]), "exactly one of r2 and kappa"),
        (dict(spikes=[(None, None, 0.5)] * 3, d=5), "d >= k \\+ p = 6"),
    ],
)
def test_bad_spikes_are_refused(kwargs, match):
    d = kwargs.pop("d", 8)
    with pytest.raises(ValueError, match=match):
        sj.multi_index_problem(d, key=jax.random.key(0), g="parity", k=3, **kwargs)


@pytest.mark.slow  # 8-30 s; subspace_metrics stay checked in test_reduced_form_matches_full_dimension and the CLI's multi-index test
@pytest.mark.parametrize("width", [None, 3])
def test_default_observables_follow_the_target(width):
    """With no `SaveAt(fn=)`, a k-index run records the subspace observables (the single-index
    metrics read a `u` it does not have), and first passages are taken per direction."""
    p = _problem("staircase", noise=0.1)
    net = None if width is None else sj.Network(width=width, second_layer="joint")
    kw = dict(key=jax.random.key(2), solver=sj.Euler(), dt=0.1, steps=40, network=net)
    default = sj.simulate(p, sj.Normalized(), sj.Population(), saveat=sj.SaveAt(steps=4, passages={"u1": [0.5]}), **kw)
    explicit = sj.simulate(p, sj.Normalized(), sj.Population(),
                           saveat=sj.SaveAt(steps=4, fn=sj.subspace_metrics, passage_fn=sj.direction_overlaps,
                                            passages={"u1": [0.5]}), **kw)
    assert set(default.ys) == set(explicit.ys)
    for key in default.ys:
        np.testing.assert_array_equal(default.ys[key], explicit.ys[key])
    np.testing.assert_array_equal(default.passages["u1"], explicit.passages["u1"])


@pytest.mark.slow
def test_sum_h2_nstar_passages_from_one_pass_sgd():
    """Issue 13, experiment 3's code path (`experiments/multi_index.py`, `nstar_run`): at d = 8 a
    width-8 network learns sum_h2 (k = 2) by one-pass SGD within the budget, every seed's
    sample count is batch x its passage step, and the budget bounds it; a 3-step budget does
    not reach coverage 0.9 (it starts near sqrt(m/d) of a random span, not at 1)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "experiments"))
    import multi_index

    cfg = dict(seed=0, seeds=4, g="sum_h2", activation="relu", width_per_direction=4, dynamic="vanilla",
               scaling="standard", a_init="sign", bias_init=1.0, batch=8, dt_times_d=1.6, steps_per_d=100,
               record=4, threshold=0.9)
    cfg["width_per_direction"] = 2  # m = 4 < d = 8: a random span does not cover U
    r = multi_index.nstar_run(cfg, 8, 2)
    assert r["status"] == ["ok"] * 4
    n_star = sj.median_n(r["n"])
    assert np.isfinite(n_star) and 0 < n_star <= r["budget"]
    assert np.all(np.nan_to_num(r["n"]) % 8 == 0)
    assert np.all(np.nanmax(r["n_dir"], 1) <= np.nan_to_num(r["n"], nan=np.inf) + 1e-9)  # subspace >= each cover
    short = multi_index.nstar_run(cfg, 8, 2, steps=3)
    assert np.isnan(sj.median_n(short["n"]))


def test_activation_blind_to_a_direction_is_refused_or_warned():
    """The k-index blind check (`MultiIndex.check_activation`, run by the source when a run is
    prepared, not by the problem): ReLU's beta_3 = 0, so at b = 0 it cannot see the staircase's
    degree-3 term, the only one touching u3 (a warning: a bias lifts it); h2 has no coefficient
    at or above degree 3 whatever the bias (refused by the population, like the single-index
    `beta_s = 0`; a sampled source warns: reusing samples can still learn it, the
    generative-exponent route). k = 1 says the same. The warning's claim measured: the
    population signal on rho_3, d E[y phi(s zeta + b)] / d rho_3, is 0 at b = 0 and not at b = 0.4."""
    import warnings

    key = jax.random.key(0)
    run = lambda q, source=None: sj.prepare(q, sj.Normalized(), source, key=key)  # noqa: E731
    problem = lambda g, k, activation: sj.multi_index_problem(8, key=key, g=g, k=k, activation=activation)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the problems themselves are not judged
        p = problem("staircase", 3, "relu")
        parity, h2 = problem("parity", 3, "relu"), problem("staircase", 3, "h2")
    with pytest.warns(UserWarning, match="u3 of g='staircase' appears only in terms of total degree 3, where"):
        run(p)
    with pytest.warns(UserWarning, match="u1, u2, u3 of g='parity' appear only in terms of total degree 3"):
        run(parity)
    with pytest.raises(ValueError, match="activation='h2' is not allowed; u3 of g='staircase' appears only in terms "
                                         "of total degree 3, and the activation's beta_j = 0 for every j at or above"):
        run(h2)
    with pytest.raises(ValueError, match="activation='h2' is not allowed; u1, u2, u3 of g='parity'"):
        sj.MultiIndex(jnp.eye(3, 8), "parity").check_activation(sj.hermite_function("h2").coeffs, "h2")
    for source in (sj.Empirical(16), sj.Online(4)):
        with pytest.warns(UserWarning, match="activation='h2': u3 of g='staircase' .* even with a bias; a sampled "
                                             "source can still learn it .* generative-exponent route"):
            run(h2, source)
    one = problem({(3,): 1.0}, 1, "relu")  # k = 1: the single-index He3 against ReLU
    with pytest.warns(UserWarning, match="u1 of g='custom' .* cannot learn it from the population gradient") as seen:
        run(one)
    assert "generative-exponent" not in str(seen[0].message)
    with pytest.warns(UserWarning, match="u1 of g='custom' .* generative-exponent route"):
        run(one, sj.Reused(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(problem("sum_h2", 2, "relu"))  # beta_2 != 0: nothing to say
        run(problem("parity", 3, "tanh"))  # beta_3 != 0
    rho = jnp.array([[0.5, 0.3, 0.2]])
    for b, zero in ((0.0, True), (0.4, False)):
        c = sj.shifted_coeffs(p.activation, jnp.array([b]), jnp.ones(1), p.target.degree)
        signal = float(jax.grad(lambda r: p.target.cross_moment(r, c).sum())(rho)[0, 2])
        assert (abs(signal) < 1e-12) == zero, (b, signal)
