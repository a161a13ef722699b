"""Closed-form population expectations, and the exact reduced form.

With `sigma_w = ||w||_Sigma / N(w)` and `rho = <w,u>_Sigma / (||w||_Sigma ||u||_Sigma)`, the
pair (pre-activation, link argument) is Gaussian with scales `(sigma_w, 1)` and correlation
`rho`, so `E[phi(sigma_w Z1) f_*(Z2)] = sum_j alpha_j beta_j(sigma_w) rho^j` (Mehler).
This is exact for Gaussian inputs and a target with a Hermite series (single- or
multi-index; a multi-index one goes through `_committee.py`): `check_closed_form` refuses
anything else before a closed form can return a wrong number.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._covariance import dot
from ._hermite import scaled_coeffs, second_moment
from ._neuron import neuron_norm
from ._committee import network_risk
from ._target import SingleIndex, has_closed_form


def check_closed_form(problem, what: str = "source=Population()"):
    """Raise `ValueError` unless the closed forms are exact for `problem`."""
    if not problem.inputs.is_gaussian:
        raise ValueError(
            f"inputs={problem.inputs!r} is not allowed with {what}; the closed-form expectations "
            "hold for Gaussian inputs only: use sj.Empirical(n=...) or sj.Online(batch=...)"
        )
    if not has_closed_form(problem.target):
        raise ValueError(
            f"target={type(problem.target).__name__} is not allowed with {what}; the closed form "
            "covers targets with a Hermite series (SingleIndex, MultiIndex)"
        )


def rho(w, problem):
    """`<w, u>_Sigma / (||w||_Sigma ||u||_Sigma)`: the prediction-relevant overlap."""
    cov, u = problem.covariance, problem.u
    return cov.inner(w, u) / (cov.norm(w) * cov.norm(u))


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
    """The population risk as a function of `(sigma_w, rho)` alone: the loss's
    `population` of `E[phi^2]`, `E[phi y]` and `E[y^2]` (squared: `E[phi^2]/2 - E[phi y] +
    E[y^2]/2`; correlation: `-E[phi y]`)."""
    second = second_moment(problem.activation, sigma)
    target = problem.link.sq_norm + problem.noise**2
    return problem.loss.population(second, correlation(problem, sigma, rho_), target)


def population_risk(w, problem, cov):
    """Exact population risk of one neuron (`a = 1`, `b = 0`) with normaliser `cov`; a
    multi-index target goes through the network's closed form at width 1."""
    if not isinstance(problem.target, SingleIndex):
        one = jnp.ones((1,), w.dtype)
        return network_risk(w[None], one, jnp.zeros_like(one), problem, cov)
    norm_sigma = problem.covariance.norm(w)
    sigma = norm_sigma / neuron_norm(w, cov)
    return overlap_risk(problem, sigma, rho(w, problem))


def spike_constants(problem):
    """`(<u, theta>, ||u||_Sigma)`: the loop-invariant part of `population_grad` (None for a
    target other than `SingleIndex`: its gradient is `jax.grad` of `population_risk`)."""
    if not isinstance(problem.target, SingleIndex):
        return None
    cov, u = problem.covariance, problem.u
    ut = dot(u, cov.theta)
    return ut, jnp.sqrt(cov.scale * (dot(u, u) + cov.kappa * ut * ut))


def population_grad(w, problem, neuron, constants=None):
    """`grad R(w) = A Sigma w + C Sigma u` in closed form, for a `neuron` with `closed_form`
    (`Plain()` or `SigmaNorm()`) under a `SpikedCovariance` (any coordinates, the reduced ones
    included).

    The risk depends on `w` only through `a = ||w||_Sigma^2` and `b = <w, u>_Sigma`, so the
    chain rule leaves two scalars; written this way every operation on the reduced form
    is elementwise under `vmap` (several times faster than `jax.grad` of `population_risk`
    there; BENCHMARKS.md).
    """
    cov, u = problem.covariance, problem.u
    th, kappa, scale = cov.theta, cov.kappa, cov.scale
    ut, nu = spike_constants(problem) if constants is None else constants
    wt = dot(w, th)
    a = scale * (dot(w, w) + kappa * wt * wt)  # ||w||_Sigma^2
    b = scale * (dot(w, u) + kappa * wt * ut)  # <w, u>_Sigma
    root = jnp.sqrt(a)
    r = b / (root * nu)
    unit = neuron.unit_scale  # sigma_w = 1 (SigmaNorm), else sqrt(a) (Plain)
    sigma = jnp.ones_like(root) if unit else root
    r_sigma, r_rho = jax.grad(lambda s_, r_: overlap_risk(problem, s_, r_), argnums=(0, 1))(sigma, r)
    # d rho = Sigma u / (sqrt(a) nu) - rho Sigma w / a ;  d sqrt(a) = Sigma w / sqrt(a)
    coef_w = -r_rho * r / a + (0.0 if unit else r_sigma / root)
    coef_u = r_rho / (root * nu)
    # coef_w Sigma w + coef_u Sigma u, as one combination of w, u and theta
    along = kappa * (coef_w * wt + coef_u * ut)
    return scale * (coef_w[..., None] * w + coef_u[..., None] * u + along[..., None] * th)


def _orthonormal_rows(rows, tol=1e-6):
    """Gram-Schmidt on the rows of `rows` (r, d); a row dependent on the earlier ones
    becomes zero, so the basis keeps its shape under `vmap`."""
    out = []
    for x in rows:
        for e in out:
            x = x - dot(x, e) * e
        n = jnp.linalg.norm(x)
        out.append(jnp.where(n > tol, x / jnp.where(n > tol, n, 1.0), 0.0))
    return jnp.stack(out)


def reduce(problem, w0):
    """The exact reduced form: coordinates in an orthonormal basis of
    `span{target directions, spike directions, w0}` (3 coordinates for the paper's problem;
    `m + 2` for the rows `w0` (m, d) of a width-`m` network).

    The population flow never leaves that span, and the covariance and target act on it by
    the same formulas (`restrict`). Returns `(problem_r, w_r, basis)` with `w = w_r @ basis`.
    """
    spikes = problem.covariance.directions()
    if spikes is None:
        problem.covariance.restrict(None)  # raises: no exact reduced form
    rows = jnp.concatenate([problem.target.directions(), spikes, jnp.atleast_2d(w0)])  # w0: (d,) or rows (m, d)
    basis = _orthonormal_rows(rows)
    target = problem.target.restrict(basis)
    if isinstance(target, SingleIndex):  # u is the first basis vector: e1, a constant (not per configuration)
        target = SingleIndex(u=jnp.eye(basis.shape[0], dtype=basis.dtype)[0], link=target.link)
    reduced = eqx.tree_at(lambda p: (p.covariance, p.target), problem, (problem.covariance.restrict(basis), target))
    return reduced, w0 @ basis.T, basis
