"""Targets: what the labels are a function of.

`AbstractTarget` is the extension point: `__call__(z, cov)` gives the noiseless labels of
base draws `z` (inputs `x = Sigma^{1/2} z`), and `directions()` the rows its labels
depend on (the reduced form keeps them in its basis). `SingleIndex(u, link)` is the
paper's `f_*(<u, x> / ||u||_Sigma)`; `MultiIndex(U, g)` (`_multi_index.py`) has k rows and
a k-argument link. A target with a closed form for Gaussian inputs also gives `degree`,
`second_moment()`, `sigma_cross` and `cross_moment` (what `_committee.py` asks it), and
`check_activation` says whether an activation can see it.
"""

from __future__ import annotations

import abc
import sys
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._hermite import HermiteFunction, horner

# What a sampled source can do that the population gradient cannot: the warning's second half.
GENERATIVE_ROUTE = ("a sampled source can still learn it where it reuses samples (sj.Empirical, sj.Reused): the "
                    "generative-exponent route (Dandi et al. 2024; Arnaboldi et al. 2024)")


def warn_user(message: str):
    """A `UserWarning` attributed to the first frame outside spikejax, equinox and jax (the
    user's call), so Python's default filter shows it once per message and call site."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in ("spikejax", "equinox", "jax"):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


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

    def index_direction(self):
        """The single direction `u` of a single-index target, which the default observables
        (`cos_u`, `rho`) read; None for a target of several directions."""
        return None

    def check_activation(self, beta, name: str, sampled: bool = False):
        """Raise `ValueError` if an activation with Hermite coefficients `beta` (called `name`)
        is blind to the target for the population gradient (`sampled=False`), or warn
        (`sampled=True`: a source that draws samples); nothing to check by default."""

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

    def index_direction(self):
        return self.u

    def directions(self):
        return self.u[None]

    def restrict(self, basis):
        return SingleIndex(u=basis @ self.u, link=self.link)

    def check(self, cov=None):
        """Refuse a constant link: it has no direction to learn."""
        if not isinstance(self.link.coeffs, jax.core.Tracer) and self.link.information_exponent() is None:
            raise ValueError(f"link={self.link.name!r} is not allowed; the link must have a non-constant part "
                             "(alpha_j != 0 for some j >= 1)")

    def check_activation(self, beta, name: str, sampled: bool = False):
        """`beta_s = 0` at the link's information exponent `s`: the neuron is blind to the
        link, its population gradient has no signal along `u` at the leading degree `s`.
        Refused for the population (`sampled=False`); a warning for a sampled source."""
        if isinstance(self.link.coeffs, jax.core.Tracer):
            return
        s = self.link.information_exponent()
        beta = np.asarray(beta)
        if s is None or (s < beta.shape[0] and abs(float(beta[s])) > 1e-8):
            return
        why = f"the link has information exponent s={s} and the activation's beta_{s} = 0, so the neuron is blind to it"
        if not sampled:
            raise ValueError(f"activation={name!r} is not allowed; {why}; choose an activation with beta_{s} != 0 "
                             f"({GENERATIVE_ROUTE})")
        warn_user(f"activation={name!r}: {why} (no population signal along u); {GENERATIVE_ROUTE}")

    @property
    def degree(self) -> int:
        return self.link.degree

    def second_moment(self):
        return self.link.sq_norm

    def sigma_cross(self, sw, cov):
        return sw @ self.u / cov.norm(self.u)

    def cross_moment(self, rho, c):
        """`sum_j alpha_j c_j rho^j` (Mehler) by Horner's rule."""
        alpha = jnp.asarray(self.link.coeffs)
        return horner(c[:, : alpha.shape[-1]] * alpha, rho)
