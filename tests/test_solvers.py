"""The flow against the algorithm: Dopri5 solves the gradient flow to a tolerance, Euler is
gradient descent with step dt, and no failure of the algorithm passes as a failure of the flow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import spikejax as sj

KEY = jax.random.key(0)


def _stiff_problem():
    """The cell docs/results.md once called "slow, not stuck": d = 64, kappa = 30, r1 = 0.5."""
    return sj.make_problem(64, key=KEY, kappa=30.0, r1=0.5, link="h2", activation="relu")


def test_flow_converges_where_euler_sits_on_a_period_two_orbit():
    p = _stiff_problem()
    flow = sj.simulate(p, sj.Normalized(), key=jax.random.key(1), dt=0.5, steps=4000)  # T = 2000
    assert sj.STATUS[int(flow.status)] == "ok"
    assert abs(float(flow.cos_u[-1])) > 0.999
    euler = sj.simulate(p, sj.Normalized(), key=jax.random.key(1), solver=sj.Euler(), dt=0.5, steps=4000)
    assert sj.STATUS[int(euler.status)] == "oscillating"
    assert abs(float(euler.cos_u[-1])) < 0.95  # the artefact the status now names
    small = sj.simulate(p, sj.Normalized(), key=jax.random.key(1), solver=sj.Euler(), dt=0.1, steps=20000)
    assert sj.STATUS[int(small.status)] == "ok" and abs(float(small.cos_u[-1])) > 0.999


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_spherical_fixed_points_are_the_same_for_flow_and_euler(kappa):
    p = sj.make_problem(64, key=KEY, kappa=kappa, r1=0.0, link="h2", activation="relu")
    kw = dict(key=jax.random.key(1), dt=0.5, steps=6000, reduced=True)
    flow = sj.simulate(p, sj.Spherical(), **kw)
    euler = sj.simulate(p, sj.Spherical(), solver=sj.Euler(), **kw)
    assert sj.STATUS[int(euler.status)] == "ok"
    assert abs(abs(float(flow.cos_u[-1])) - abs(float(euler.cos_u[-1]))) < 1e-4


def test_dopri5_matches_richardson_extrapolated_euler():
    """Mid-flight (T = 4): Euler at dt and dt/2 extrapolated to O(dt^2) against the flow."""
    p = sj.make_problem(32, key=KEY, kappa=20.0, r1=0.25, link="h3", activation="h3", noise=0.1)
    kw = dict(key=jax.random.key(2), saveat=sj.SaveAt(steps=2))
    flow = sj.simulate(p, sj.Normalized(), solver=sj.Dopri5(rtol=1e-10, atol=1e-12), dt=0.01, steps=400, **kw)
    e1 = sj.simulate(p, sj.Normalized(), solver=sj.Euler(), dt=0.008, steps=500, **kw).w
    e2 = sj.simulate(p, sj.Normalized(), solver=sj.Euler(), dt=0.004, steps=1000, **kw).w
    richardson = 2 * e2 - e1
    moved = float(jnp.linalg.norm(flow.w - sj.prepare(p, sj.Normalized(), key=jax.random.key(2))[1]))
    assert moved > 0.05  # a real trajectory
    err1, err2 = float(jnp.linalg.norm(e1 - flow.w)), float(jnp.linalg.norm(e2 - flow.w))
    assert err2 > 5e-6  # Euler's own error is visible ...
    assert 1.8 < err1 / err2 < 2.2  # ... first order, converging onto the flow's answer ...
    assert float(jnp.linalg.norm(richardson - flow.w)) < 0.2 * err2  # ... and extrapolates onto it


def test_adaptive_steps_are_close_to_a_reference_integrator():
    """Steps taken by Dopri5 at rtol 1e-6 against scipy's RK45 (the same pair) on the
    3-coordinate ODE: within a factor 2 either way, and far below Euler's count."""
    p = sj.make_problem(128, key=KEY, kappa=50.0, r1=0.25, link="h2", activation="relu")
    kw = dict(key=jax.random.key(3), dt=0.1, steps=2000, reduced=True)  # T = 200
    ours = sj.simulate(p, sj.Normalized(), solver=sj.Dopri5(rtol=1e-6, atol=1e-9), **kw)
    sim, w0 = sj.prepare(p, sj.Normalized(), **kw)
    field = jax.jit(lambda w: -sim.field(w, 0))
    ref = solve_ivp(lambda t, w: np.asarray(field(jnp.asarray(w))), (0.0, 200.0), np.asarray(w0),
                    method="RK45", rtol=1e-6, atol=1e-9)
    n_ref = ref.t.size - 1
    n_ours = int(ours.num_steps)
    assert 0.5 * n_ref <= n_ours <= 2 * n_ref, (n_ours, n_ref)
    assert n_ours < 2000 / 4
    assert abs(float(ours.cos_u[-1])) > 0.99


def test_retraction_keeps_the_constraint_exactly_along_the_flow():
    p = sj.make_problem(32, key=KEY, kappa=15.0, r1=0.2, noise=0.1)
    kw = dict(key=jax.random.key(4), dt=0.2, steps=1000)
    nor = sj.simulate(p, sj.Normalized(), **kw)
    np.testing.assert_allclose(nor.norm, 1.0, atol=1e-8)
    sph = sj.simulate(p, sj.Spherical(), **kw)
    np.testing.assert_allclose(sph.norm, 1.0, atol=1e-8)
    pre = sj.simulate(p, sj.Preconditioned(), **kw)
    assert abs(float(p.covariance.norm(pre.w)) - 1.0) < 1e-8


@pytest.mark.slow  # 17 s; grad through the fixed-step solvers stays in test_api.py
def test_grad_through_the_adaptive_solver_wrt_kappa_and_horizon():
    """Reverse mode through a bounded Dopri5, against central finite differences."""

    def final_risk(kappa, dt):
        p = sj.make_problem(16, key=KEY, kappa=kappa, r1=0.2, link="h2", noise=0.1)
        tr = sj.simulate(p, sj.Normalized(), key=jax.random.key(5), dt=dt, steps=100, reduced=True,
                         solver=sj.Dopri5(rtol=1e-10, atol=1e-12, max_steps=120), saveat=sj.SaveAt(steps=2))
        return tr.risk[-1]

    f = jax.jit(final_risk)
    gk, gt = jax.grad(f, argnums=(0, 1))(10.0, 0.05)  # T = 100 * dt = 5: mid-flight
    h = 1e-5
    fd_k = (f(10.0 + h, 0.05) - f(10.0 - h, 0.05)) / (2 * h)
    fd_t = (f(10.0, 0.05 + h) - f(10.0, 0.05 - h)) / (2 * h)
    assert float(gk) == pytest.approx(float(fd_k), rel=1e-4, abs=1e-9)
    assert float(gt) == pytest.approx(float(fd_t), rel=1e-4)
    assert abs(float(gt)) > 1e-4  # the horizon matters here


def test_max_steps_is_flagged_not_silent():
    p = _stiff_problem()
    tr = sj.simulate(p, sj.Normalized(), key=jax.random.key(1), dt=0.5, steps=4000,
                     solver=sj.Dopri5(max_steps=50))
    assert sj.STATUS[int(tr.status)] == "max_steps"
    assert np.isnan(float(tr.rho[-1]))


def test_check_dt_separates_the_artefact_from_a_converged_flow():
    p = _stiff_problem()
    bad = sj.check_dt(p, sj.Normalized(), key=jax.random.key(1), solver=sj.Euler(), dt=0.5, steps=4000)
    good = sj.check_dt(p, sj.Normalized(), key=jax.random.key(1), solver=sj.Euler(), dt=0.1, steps=20000)
    assert bad["cos_u"] > 0.02 and good["max"] < 1e-3


def test_time_axis_is_t_equals_k_dt():
    p = sj.make_problem(16, key=KEY, kappa=3.0)
    a = sj.simulate(p, sj.Normalized(), key=KEY, dt=0.1, steps=100, saveat=sj.SaveAt(steps=(0, 50, 100)))
    b = sj.simulate(p, sj.Normalized(), key=KEY, dt=0.05, steps=200, saveat=sj.SaveAt(steps=(0, 100, 200)))
    np.testing.assert_allclose(a.ts, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(a.ts, b.ts)
    np.testing.assert_allclose(a.rho, b.rho, atol=1e-7)  # the flow does not depend on the first step's guess


def test_stability_limit_closed_form_and_early_stop():
    """Linear link and activation, vanilla GD on the population risk: the Jacobian is Sigma,
    whose top eigenvalue is 1 (Sigma = (I + kappa theta theta^T) / (1 + kappa)), so the Euler
    limit is 2 / 1. The early-stopped power iteration agrees with a 400-iteration one to 1e-3."""
    for kappa in (10.0, 100.0):
        p = sj.make_problem(32, key=jax.random.key(0), kappa=kappa, r1=0.0, link="h1", activation="h1", noise=0.0)
        sim, w0 = sj.prepare(p, sj.Vanilla(), sj.Population(), key=jax.random.key(1), solver=sj.Euler(), dt=0.1, steps=10)
        assert float(sj.stability_limit(sim, w0)) == pytest.approx(2.0, rel=1e-4)
    p = sj.make_problem(64, key=jax.random.key(0), kappa=100.0, r1=0.25, link="h2", activation="relu", noise=0.25)
    sim, w0 = sj.prepare(p, sj.Normalized(), sj.Empirical(512), key=jax.random.key(1), solver=sj.Euler(), dt=0.1, steps=10)
    full = float(sj.stability_limit(sim, w0, iters=400, rtol=0.0))
    assert 0.1 < full < 1.0  # the spike makes it stiff: well below the isotropic 2
    assert float(sj.stability_limit(sim, w0)) == pytest.approx(full, rel=1e-3)
