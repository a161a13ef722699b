"""Closed-form population expectations, and the exact 3-coordinate reduction.

With `sigma_w = ||w||_Sigma / N(w)` and `rho = <w,u>_Sigma / (||w||_Sigma ||u||_Sigma)`, the
pair (pre-activation, link argument) is Gaussian with scales `(sigma_w, 1)` and correlation
`rho`, so `E[phi(sigma_w Z1) f_*(Z2)] = sum_j alpha_j beta_j(sigma_w) rho^j` (Mehler).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._data import Spike
from ._hermite import scaled_coeffs, second_moment
from ._network import neuron_norm


def rho(w, spike: Spike):
    """`<w, u>_Sigma / (||w||_Sigma ||u||_Sigma)`: the prediction-relevant overlap."""
    return spike.inner(w, spike.u) / (spike.norm(w) * spike.norm(spike.u))


def correlation(problem, sigma, rho_):
    """`E[phi(sigma Z1) f_*(Z2)]` for unit-variance `Z2` with correlation `rho_`.

    Evaluated by Horner's rule, term by term: under `vmap` it stays elementwise (one fused
    loop) instead of stacking powers and reducing over a short axis.
    """
    alpha = problem.link.coeffs
    degree = alpha.shape[-1] - 1
    act = problem.activation
    # homogeneous (ReLU): beta_j(sigma) = sigma beta_j, so pull sigma out of the sum
    beta = scaled_coeffs(act, jnp.ones_like(sigma) if act.homogeneous else sigma, degree)
    out = alpha[..., degree] * beta[..., degree]
    for j in range(degree - 1, -1, -1):
        out = out * rho_ + alpha[..., j] * beta[..., j]
    return sigma * out if act.homogeneous else out


def overlap_risk(problem, sigma, rho_):
    """The population risk as a function of `(sigma_w, rho)` alone.

    Squared loss: `E[phi^2]/2 - E[phi y] + E[y^2]/2`; correlation loss: `-E[phi y]`.
    """
    cross = correlation(problem, sigma, rho_)
    if problem.loss == "correlation":
        return -cross
    target = problem.link.sq_norm + problem.noise**2
    return 0.5 * second_moment(problem.activation, sigma) - cross + 0.5 * target


def population_risk(w, problem, cov):
    """Exact population risk of one neuron (`a = 1`, `b = 0`) with normaliser `cov`."""
    spike = problem.spike
    norm_sigma = spike.norm(w)
    sigma = norm_sigma / neuron_norm(w, cov)
    r = spike.inner(w, spike.u) / (norm_sigma * spike.norm(spike.u))
    return overlap_risk(problem, sigma, r)


def reduce(problem, w0):
    """The exact 3-coordinate form: coordinates in the orthonormal basis `(u, v, e3)`.

    `theta` lies in `span{u, v}` and `e3` is the part of `w0` outside it; the population
    flow never leaves `span{u, v, e3}`, and `Sigma` acts on it by the same formulas. Returns
    `(problem3, w3, basis)` with `w = w3 @ basis`.
    """
    spike = problem.spike
    a, b = w0 @ spike.u, w0 @ spike.v
    rest = w0 - a * spike.u - b * spike.v
    r = jnp.linalg.norm(rest)
    e3 = rest / jnp.where(r > 0, r, 1.0)
    basis = jnp.stack([spike.u, spike.v, e3])
    eye = jnp.eye(3, dtype=w0.dtype)
    spike3 = Spike(u=eye[0], v=eye[1], c=spike.c, kappa=spike.kappa, scale=spike.scale)
    problem3 = eqx.tree_at(lambda p: p.spike, problem, spike3)
    return problem3, jnp.stack([a, b, r]), basis
