import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import spikejax as sj


def _reduced_risk_minimiser(kappa):
    """1-D reduced spherical risk at theta = u, ReLU, h2 link (unit_top):
    on the sphere with c = <w,u>, sigma_w^2 = (1 + kappa c^2)/(1 + kappa) and
    rho = c / sigma_w, so R(c) = sigma_w^2 / 4 - beta_2 sigma_w rho^2 + const."""
    beta2 = 1 / np.sqrt(4 * np.pi)

    def risk(c):
        s = np.sqrt((1 + kappa * c * c) / (1 + kappa))
        return s * s / 4 - beta2 * c * c / s

    return minimize_scalar(risk, bounds=(0, 1), method="bounded", options=dict(xatol=1e-12)).x


@pytest.mark.parametrize("kappa", [pytest.param(10.0, marks=pytest.mark.slow), pytest.param(100.0, marks=pytest.mark.slow), 1000.0])
def test_spherical_failure_fixed_point(kappa):
    p = sj.make_problem(64, key=jax.random.key(0), kappa=kappa, r1=0.0, link="h2", activation="relu")
    run = jax.jit(lambda p, dyn, steps: sj.simulate(p, dyn, key=jax.random.key(1), dt=0.5, steps=steps),
                  static_argnums=(1, 2))
    sph = run(p, sj.Spherical(), 6000)
    c_star = _reduced_risk_minimiser(kappa)
    assert c_star < 0.75  # bounded away from 1: the failure is real
    assert abs(float(sph.cos_u[-1])) == pytest.approx(c_star, abs=1e-3)
    # it is a fixed point: the last records agree
    assert abs(float(sph.cos_u[-1]) - float(sph.cos_u[-3])) < 1e-4
    # the bulk part of w moves at speed ~ 1/(1+kappa): give the normalised flow time
    norm = run(p, sj.Normalized(), 40000)
    assert abs(float(norm.cos_u[-1])) > 0.999


@pytest.mark.parametrize("source", [sj.Population(), sj.Empirical(512), sj.Online(128)])
def test_normalized_keeps_norm(source):
    p = sj.make_problem(32, key=jax.random.key(0), kappa=15.0, r1=0.2, noise=0.1)
    tr = sj.simulate(p, sj.Normalized(), source, key=jax.random.key(2), dt=0.1, steps=1000)
    assert np.max(np.abs(np.asarray(tr.norm) - 1.0)) < 1e-6
    assert abs(float(tr.rho[-1])) > abs(float(tr.rho[0]))


@pytest.mark.parametrize("source", [sj.Population(), sj.Empirical(512)])
def test_preconditioned_keeps_sigma_hat_norm(source):
    p = sj.make_problem(32, key=jax.random.key(0), kappa=15.0, r1=0.2, noise=0.1)
    kw = dict(key=jax.random.key(2), dt=0.1, n_unlabelled=256)
    sim, w0 = sj.prepare(p, sj.Preconditioned(), source, steps=1000, **kw)
    tr = sj.simulate(p, sj.Preconditioned(), source, steps=1000, **kw)
    q0, q1 = float(sim.sigma_hat.norm(w0)), float(sim.sigma_hat.norm(tr.w))
    assert q0 == pytest.approx(1.0, abs=1e-12)
    assert abs(q1 - q0) < 1e-6
    # the continuous flow keeps it too: <w, SigmaHat SigmaHat^{-1} grad R_N> = <w, grad R_N> = 0
    g = jax.grad(sim.risk)(tr.w, 0)
    assert abs(float(sim.sigma_hat.inner(tr.w, sim.sigma_hat.inv(g)))) < 1e-10 * float(jnp.linalg.norm(g) + 1)


@pytest.mark.parametrize("dynamic", [sj.Normalized(), sj.Preconditioned()])
def test_normalised_risks_are_scale_invariant(dynamic):
    p = sj.make_problem(16, key=jax.random.key(0), kappa=9.0, r1=0.1, link="h3", activation="tanh")
    sim, w0 = sj.prepare(p, dynamic, sj.Empirical(300), key=jax.random.key(1))
    w = w0 + 0.3 * p.u
    assert float(sim.risk(2.7 * w, 0)) == pytest.approx(float(sim.risk(w, 0)), rel=1e-12)
    assert abs(float(w @ jax.grad(sim.risk)(w, 0))) < 1e-12


def test_spherical_stays_on_sphere_and_vanilla_leaves_it():
    p = sj.make_problem(32, key=jax.random.key(0), kappa=5.0)
    sph = sj.simulate(p, sj.Spherical(), key=jax.random.key(1), dt=0.3, steps=300)
    van = sj.simulate(p, sj.Vanilla(), key=jax.random.key(1), dt=0.3, steps=300)
    np.testing.assert_allclose(sph.norm, 1.0, atol=1e-12)
    assert abs(float(van.norm[-1]) - 1.0) > 0.05


@pytest.mark.slow  # 29 s; the empirical gradient against numpy stays in test_sources.py
def test_empirical_gradient_converges_like_inverse_sqrt_n():
    p = sj.make_problem(16, key=jax.random.key(0), kappa=5.0, r1=0.2, link="h2", noise=0.5)
    w = jax.random.normal(jax.random.key(1), (16,))
    w = w / jnp.linalg.norm(w) + 0.5 * p.u
    cov = p.covariance
    g_pop = jax.grad(sj.population_risk)(w, p, cov)

    def err(n, seed):
        z, y = sj.draw(p, jax.random.key(seed), n)
        g = jax.grad(sj.sample_risk)(w, z, y, p, cov)
        return jnp.linalg.norm(g - g_pop)

    ns = np.array([256, 1024, 4096, 16384, 65536])
    rms = [float(jnp.sqrt(jnp.mean(jnp.stack([err(int(n), s) ** 2 for s in range(24)])))) for n in ns]
    slope = np.polyfit(np.log(ns), np.log(rms), 1)[0]
    assert -0.6 < slope < -0.4, (slope, rms)


def test_custom_optimizer_runs_vanilla_online():
    import optax

    p = sj.make_problem(16, key=jax.random.key(0), kappa=3.0, link="h1", noise=0.1)
    tr = sj.simulate(p, sj.Vanilla(), sj.Online(64), key=jax.random.key(1), steps=400,
                     solver=sj.Optax(optax.adam(1e-2)))
    assert int(tr.status) == 0
    assert abs(float(tr.rho[-1])) > 0.95


def test_divergence_is_flagged_not_raised():
    p = sj.make_problem(16, key=jax.random.key(0), kappa=3.0, link="h1")
    # a huge step on the unconstrained plain neuron blows up
    tr = sj.simulate(p, sj.Vanilla(), key=jax.random.key(1), solver=sj.Euler(), dt=1e4, steps=200, max_norm=1e3)
    assert sj.STATUS[int(tr.status)] in ("diverged", "nonfinite")
    assert 0 < int(tr.fail_step) <= 200
    assert np.isnan(float(tr.rho[-1])) and np.isfinite(float(tr.rho[0]))
