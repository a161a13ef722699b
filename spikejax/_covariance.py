"""Input covariances as operators: `Sigma^{1/2} a`, `Sigma a`, `Sigma^{-1} a`, `<a, b>_Sigma`.

`AbstractCovariance` is the extension point: a subclass gives `sqrt`, `apply` and `inv`
acting on the last axis; `inner` and `norm` follow. A covariance that is the identity plus
a low-rank part also gives `directions()` (its spike directions, one per row) and
`restrict(basis)` (the same covariance in the coordinates of an orthonormal basis that
contains them): the exact reduced form of the population dynamics needs both, and a
covariance without them refuses `reduced=True`.

No d x d matrix is formed for a spiked covariance. `dot` contracts the last axis; on the
3-coordinate reduced form it avoids XLA's slow reductions over a short axis (see `dot`).
"""

from __future__ import annotations

import abc
import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

NORMALISATIONS = ("unit_top", "unnormalised")
_UNROLL = 4  # a last axis of at most this length is a "short axis" (see `dot`)
_SHORT_DOT = ["unroll"]  # how `dot` traces a short axis; set by `short_dot` while a solver traces


@contextlib.contextmanager
def short_dot(mode: str):
    """Trace the short-axis `dot` as `"unroll"` (an elementwise sum of slices: fastest for
    one gradient a step) or `"matvec"` (`(a * b) @ 1`: an adaptive step's seven stages of
    unrolled slices run 20x slower on CPU, matrix-vector products do not)."""
    old = _SHORT_DOT[0]
    _SHORT_DOT[0] = mode
    try:
        yield
    finally:
        _SHORT_DOT[0] = old


def dot(a, b):
    """`sum_i a[..., i] b[..., i]` with broadcasting.

    On a short axis (the reduced form) a reduction runs several times slower under `vmap`
    on CPU, so it is an unrolled sum of slices by default (fastest for one gradient a step)
    and `(a * b) @ 1` inside `short_dot("matvec")` (what `Dopri5` uses: its seven stages of
    unrolled slices ran 20x slower)."""
    n = a.shape[-1]
    if n <= _UNROLL and _SHORT_DOT[0] == "unroll":
        return sum(a[..., i] * b[..., i] for i in range(n))
    if n <= _UNROLL:
        return (a * b) @ jnp.ones(n, jnp.result_type(a, b))
    if b.ndim == 1:
        return a @ b
    if a.ndim == 1:
        return b @ a
    return jnp.sum(a * b, -1)


def _concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


class AbstractCovariance(eqx.Module):
    """A positive-definite covariance acting on the last axis of its arguments."""

    @abc.abstractmethod
    def sqrt(self, a):
        """`Sigma^{1/2} a` (symmetric root)."""

    @abc.abstractmethod
    def apply(self, a):
        """`Sigma a`."""

    @abc.abstractmethod
    def inv(self, a):
        """`Sigma^{-1} a`."""

    def inner(self, a, b):
        """`<a, b>_Sigma`."""
        return dot(self.apply(a), b)

    def norm(self, a):
        """`||a||_Sigma`."""
        return jnp.sqrt(self.inner(a, a))

    def directions(self):
        """Rows spanning the non-identity part, or None when there is no such low-rank part."""
        return None

    def spike(self):
        """The one spike direction `theta` that `cos_theta` reads, or None (no spike, or several)."""
        rows = self.directions()
        return rows[0] if rows is not None and rows.shape[0] == 1 else None

    def restrict(self, basis):
        """This covariance in the coordinates of `basis` (r, d), orthonormal rows spanning
        `directions()`. Only low-rank-plus-identity covariances have it."""
        raise ValueError(f"{type(self).__name__} has no exact reduced form; use reduced=False")


class SpikedCovariance(AbstractCovariance):
    """`Sigma = scale (I + kappa theta theta^T)`, `theta` a unit vector.

    `scale = 1/(1+kappa)` (`"unit_top"`: eigenvalue 1 along `theta`) or `1`
    (`"unnormalised"`); build it with `SpikedCovariance.make(theta, kappa, normalisation)`.
    """

    theta: Array
    kappa: Array
    scale: Array

    def __check_init__(self):
        if _concrete(self.kappa) and not bool(np.all(np.asarray(self.kappa) >= 0)):
            raise ValueError(f"kappa={self.kappa!r} is not allowed; allowed: kappa >= 0")

    @classmethod
    def make(cls, theta, kappa, normalisation: str = "unit_top") -> "SpikedCovariance":
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation={normalisation!r} is not allowed; choose one of "
                f"{', '.join(map(repr, NORMALISATIONS))}"
            )
        theta = jnp.asarray(theta)
        kappa = jnp.asarray(kappa, theta.dtype)
        scale = 1 / (1 + kappa) if normalisation == "unit_top" else jnp.ones_like(kappa)
        return cls(theta=theta, kappa=kappa, scale=scale)

    def _along(self, a, coef):
        th = self.theta
        return a + coef * dot(a, th)[..., None] * th

    def sqrt(self, a):
        return jnp.sqrt(self.scale) * self._along(a, jnp.sqrt(1 + self.kappa) - 1)

    def apply(self, a):
        return self.scale * self._along(a, self.kappa)

    def inv(self, a):
        return self._along(a, -self.kappa / (1 + self.kappa)) / self.scale

    def inner(self, a, b):
        th = self.theta
        return self.scale * (dot(a, b) + self.kappa * dot(a, th) * dot(b, th))

    def directions(self):
        return self.theta[None]

    def restrict(self, basis):
        return SpikedCovariance(theta=basis @ self.theta, kappa=self.kappa, scale=self.scale)


class MultiSpikeCovariance(AbstractCovariance):
    """`Sigma = scale (I + sum_i kappa_i theta_i theta_i^T)` with orthonormal rows `thetas` (p, d)."""

    thetas: Array
    kappas: Array
    scale: Array

    def __check_init__(self):
        if not _concrete(self.thetas, self.kappas):
            return
        th, k = np.asarray(self.thetas, float), np.asarray(self.kappas, float)
        if th.ndim != 2 or k.shape != th.shape[:1]:
            raise ValueError(f"kappas={self.kappas!r} is not allowed; give one kappa per row of thetas (p, d)")
        if not np.allclose(th @ th.T, np.eye(th.shape[0]), atol=1e-5):
            raise ValueError("thetas is not allowed; the spike directions must be orthonormal rows")
        if not np.all(k >= 0):
            raise ValueError(f"kappas={self.kappas!r} is not allowed; allowed: every kappa_i >= 0")

    def _along(self, a, coefs):
        proj = a @ self.thetas.T
        return a + (proj * coefs) @ self.thetas

    def sqrt(self, a):
        return jnp.sqrt(self.scale) * self._along(a, jnp.sqrt(1 + self.kappas) - 1)

    def apply(self, a):
        return self.scale * self._along(a, self.kappas)

    def inv(self, a):
        return self._along(a, -self.kappas / (1 + self.kappas)) / self.scale

    def directions(self):
        return self.thetas

    def restrict(self, basis):
        return MultiSpikeCovariance(thetas=self.thetas @ basis.T, kappas=self.kappas, scale=self.scale)


class DenseCovariance(AbstractCovariance):
    """A covariance held as a dense d x d matrix, with its inverse and symmetric root
    (`DenseCovariance.make(mat)`); `SigmaHat` estimated from unlabelled samples is one."""

    mat: Array
    mat_inv: Array
    mat_sqrt: Array

    @classmethod
    def make(cls, mat) -> "DenseCovariance":
        mat = jnp.asarray(mat)
        mat = (mat + mat.T) / 2
        evals, evecs = jnp.linalg.eigh(mat)
        if _concrete(evals) and not bool(np.all(np.asarray(evals) > 0)):
            raise ValueError("mat is not allowed; a covariance must be positive definite")
        root = (evecs * jnp.sqrt(evals)) @ evecs.T
        inv = (evecs / evals) @ evecs.T
        return cls(mat=mat, mat_inv=(inv + inv.T) / 2, mat_sqrt=(root + root.T) / 2)

    def sqrt(self, a):
        return a @ self.mat_sqrt

    def apply(self, a):
        return a @ self.mat

    def inv(self, a):
        return a @ self.mat_inv
