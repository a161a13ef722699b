"""Targets: what the labels are a function of.

`AbstractTarget` is the extension point: `__call__(z, cov)` gives the noiseless labels of
base draws `z` (inputs `x = Sigma^{1/2} z`), and `directions()` the rows its labels
depend on (the reduced form keeps them in its basis). `SingleIndex(u, link)` is the
paper's `f_*(<u, x> / ||u||_Sigma)`; `MultiIndex(U, g)` (`_multi_index.py`) has k rows and
a k-argument link. A target with a closed form for Gaussian inputs also gives `degree`,
`second_moment()`, `sigma_cross` and `cross_moment` (what `_committee.py` asks it).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._hermite import HermiteFunction


def project(z, s):
    """`z @ s` for base draws `z` (n, d), written as `s @ z^T` so that under `vmap` over `s`
    with `z` shared the product is `S @ z^T` (B, n) and its gradient `R @ z` (B, d): both
    plain GEMMs (`z @ s` puts the batch last and compiles a transposed-operand GEMM)."""
    return jax.lax.dot_general(s, z, (((s.ndim - 1,), (1,)), ((), ())))


class AbstractTarget(eqx.Module):
    """Noiseless labels as a function of base draws and the covariance."""

    @abc.abstractmethod
    def __call__(self, z, cov):
        """Labels (n,) of base draws `z` (n, d)."""

    @abc.abstractmethod
    def directions(self):
        """The (k, d) rows the labels depend on."""

    @abc.abstractmethod
    def restrict(self, basis):
        """The same target in the coordinates of an orthonormal `basis` containing `directions()`."""

    def check(self, cov=None):
        """Raise `ValueError` if the target is not valid under the covariance `cov` (a problem
        calls it when built, before compiling); nothing to check by default."""

    # The closed forms for Gaussian inputs (`_committee.py`) ask the target for these; a target
    # without them has no closed form, and `Population()` refuses it.

    @property
    def degree(self) -> int:
        """The largest Hermite degree of the labels' series."""
        raise ValueError(f"target={type(self).__name__} has no closed form; use a sampled source")

    def second_moment(self):
        """`E[y^2]` without label noise."""
        raise ValueError(f"target={type(self).__name__} has no closed form; use a sampled source")

    def sigma_cross(self, sw, cov):
        """The overlaps of rows with the directions from `sw = Sigma w` (m, d), divided by the
        directions' Sigma norms: (m,) for one direction, (m, k) for k."""
        raise ValueError(f"target={type(self).__name__} has no closed form; use a sampled source")

    def cross_moment(self, rho, c):
        """`E[y phi(s_j zeta_j + b_j)]` (m,) from the neurons' Sigma-correlations `rho` with the
        directions (the shape of `sigma_cross`) and the activation's normalised Hermite
        coefficients `c` (m, K + 1) of `phi(s_j . + b_j)`, `K >= degree`."""
        raise ValueError(f"target={type(self).__name__} has no closed form; use a sampled source")


def has_closed_form(target) -> bool:
    """Whether `target` gives the closed-form hooks (`cross_moment`, ...)."""
    return type(target).cross_moment is not AbstractTarget.cross_moment


class SingleIndex(AbstractTarget):
    """`y = link(<u, x> / ||u||_Sigma)`: the division makes the link's argument N(0, 1)."""

    u: Array
    link: HermiteFunction

    def __call__(self, z, cov):
        su = cov.sqrt(self.u) / cov.norm(self.u)
        return self.link(project(z, su))

    def directions(self):
        return self.u[None]

    def restrict(self, basis):
        return SingleIndex(u=basis @ self.u, link=self.link)

    @property
    def degree(self) -> int:
        return self.link.degree

    def second_moment(self):
        return self.link.sq_norm

    def sigma_cross(self, sw, cov):
        return sw @ self.u / cov.norm(self.u)

    def cross_moment(self, rho, c):
        """`sum_j alpha_j c_j rho^j` (Mehler) by Horner's rule."""
        from ._committee import _horner

        alpha = jnp.asarray(self.link.coeffs)
        return _horner(c[:, : alpha.shape[-1]] * alpha, rho)
