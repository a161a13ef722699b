import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj

ACTIVATIONS = ["relu", "tanh", "h3"]


def thin(cases, every):
    """Every `every`-th case in the default run, the others under `slow` (make test-all)."""
    return [c if i % every == 0 else pytest.param(*c, marks=pytest.mark.slow) for i, c in enumerate(cases)]

LINKS = ["h2", "h3", "tanh"]


def _problem(link, activation, kappa=3.0, r1=0.25, loss="squared", noise=0.3, d=16):
    """Any (link, activation) pair, blind ones too: the expectations do not care."""
    p = sj.make_problem(d, key=jax.random.key(0), kappa=kappa, r1=r1, link="h1",
                        activation="relu", loss=loss, noise=noise)
    return eqx.tree_at(lambda q: (q.target.link, q.activation), p,
                       (sj.hermite_function(link), sj.hermite_function(activation)))


def _neuron(p, seed=1):
    """A generic w, tilted towards u so rho is far from 0, with ||w|| != 1."""
    w = jax.random.normal(jax.random.key(seed), (p.d,))
    return 1.3 * (w / jnp.linalg.norm(w) + 0.8 * p.u)


@pytest.mark.parametrize("activation,link,neuron", thin([(a, f, n) for a, f in itertools.product(ACTIVATIONS, LINKS)
                                                     for n in ("plain", "sigma")], 5))
def test_population_risk_against_monte_carlo(activation, link, neuron):
    p = _problem(link, activation)
    w = _neuron(p)
    cov = None if neuron == "plain" else p.covariance
    n = 1_000_000
    z, y = sj.draw(p, jax.random.key(7), n)
    pre = z @ (p.covariance.sqrt(w) / sj.neuron_norm(w, cov))
    losses = 0.5 * (p.activation(pre) - y) ** 2
    mc, se = float(losses.mean()), float(losses.std() / np.sqrt(n))
    exact = float(sj.population_risk(w, p, cov))
    assert abs(mc - exact) < 4 * se, (mc, exact, se)
    corr = p.activation(pre) * y
    pc = _problem(link, activation, loss="correlation")
    exact_c = float(sj.population_risk(w, pc, cov))
    assert abs(-float(corr.mean()) - exact_c) < 4 * float(corr.std() / np.sqrt(n))


@pytest.mark.parametrize("activation,neuron,loss", thin(list(itertools.product(ACTIVATIONS, ("plain", "sigma"),
                                                                         ("squared", "correlation"))), 5))
def test_population_gradient_against_finite_differences(activation, neuron, loss):
    p = _problem("h2" if activation != "h3" else "h3", activation, loss=loss)
    w = _neuron(p, seed=3)
    cov = None if neuron == "plain" else p.covariance
    f = lambda w: sj.population_risk(w, p, cov)
    g = np.asarray(jax.grad(f)(w))
    eps = 1e-6
    fd = np.array([(f(w + eps * e) - f(w - eps * e)) / (2 * eps) for e in np.eye(p.d)])
    np.testing.assert_allclose(g, fd, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("dynamic,r1,solver", thin(list(itertools.product(
    [sj.Spherical(), sj.Normalized(), sj.Preconditioned(), sj.Vanilla()], (0.0, 0.3), (sj.Euler(), sj.Dopri5()))), 5))
def test_three_coordinate_form_matches_full_dimension(dynamic, r1, solver):
    p = sj.make_problem(64, key=jax.random.key(0), kappa=20.0, r1=r1, link="h2",
                        activation="relu", noise=0.1)
    kw = dict(key=jax.random.key(5), dt=0.2, steps=500, solver=solver)
    full = jax.jit(lambda p: sj.simulate(p, dynamic, **kw))(p)
    red = jax.jit(lambda p: sj.simulate(p, dynamic, reduced=True, **kw))(p)
    for name in sj.METRICS[:5]:
        np.testing.assert_allclose(getattr(red, name), getattr(full, name), atol=1e-8, rtol=0)
    assert int(red.num_steps) == int(full.num_steps)  # the same steps: the error norm is rotation invariant
    np.testing.assert_allclose(red.w, full.w, atol=1e-8, rtol=0)
    # the run really moved: the overlap grew from its random start
    assert abs(float(full.rho[-1])) > abs(float(full.rho[0])) + 0.1


def test_reduced_state_is_three_dimensional():
    p = sj.make_problem(500, key=jax.random.key(0), kappa=5.0)
    sim, w0 = sj.prepare(p, sj.Normalized(), key=jax.random.key(1), reduced=True)
    assert w0.shape == (3,) and sim.problem.u.shape == (3,)
