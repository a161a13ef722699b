"""Targets: what the labels are a function of.

`AbstractTarget` is the extension point: `__call__(z, cov)` gives the noiseless labels of
base draws `z` (inputs `x = Sigma^{1/2} z`), and `directions()` the rows its labels
depend on (the reduced form keeps them in its basis). `SingleIndex(u, link)` is the
paper's `f_*(<u, x> / ||u||_Sigma)`; a k-index target has k rows and a k-argument link.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
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
