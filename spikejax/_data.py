"""Spiked covariance as O(d) operators, and sampling.

`Sigma = scale * (I + kappa theta theta^T)` with `scale = 1/(1+kappa)` (`"unit_top"`) or
`1` (`"unnormalised"`). `theta = c u + sqrt(1 - c^2) v`, `c = <u, theta>`, `v` orthogonal
to `u`. No d x d matrix is ever formed for `Sigma`. `DenseCovariance` is the same
interface over an estimated `SigmaHat`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

NORMALISATIONS = ("unit_top", "unnormalised")
INPUT_DISTS = ("gaussian", "student_t", "rademacher")


class Spike(eqx.Module):
    """The spiked covariance `Sigma` and the target direction `u`.

    **Fields:** `u`, `v` orthonormal; `c = <u, theta>`; `kappa >= 0`; `scale` as above.
    """

    u: Array
    v: Array
    c: Array
    kappa: Array
    scale: Array

    @property
    def theta(self):
        return self.c * self.u + jnp.sqrt(jnp.maximum(1 - self.c**2, 0.0)) * self.v

    def sqrt(self, a):
        """`Sigma^{1/2} a` (acts on the last axis)."""
        g = jnp.sqrt(1 + self.kappa)
        th = self.theta
        return jnp.sqrt(self.scale) * (a + (g - 1) * (a @ th)[..., None] * th)

    def inv(self, a):
        """`Sigma^{-1} a`."""
        th = self.theta
        return (a - self.kappa / (1 + self.kappa) * (a @ th)[..., None] * th) / self.scale

    def apply(self, a):
        """`Sigma a`."""
        th = self.theta
        return self.scale * (a + self.kappa * (a @ th)[..., None] * th)

    def inner(self, a, b):
        """`<a, b>_Sigma`."""
        th = self.theta
        return self.scale * (jnp.sum(a * b, -1) + self.kappa * (a @ th) * (b @ th))

    def norm(self, a):
        """`||a||_Sigma`."""
        return jnp.sqrt(self.inner(a, a))


class DenseCovariance(eqx.Module):
    """An estimated covariance `SigmaHat` held as a dense d x d matrix, with its inverse."""

    mat: Array
    mat_inv: Array

    def inv(self, a):
        return a @ self.mat_inv

    def apply(self, a):
        return a @ self.mat

    def inner(self, a, b):
        return jnp.sum((a @ self.mat) * b, -1)

    def norm(self, a):
        return jnp.sqrt(self.inner(a, a))


def directions(key, d: int):
    """A random orthonormal pair `(u, v)` in `R^d` (Gram-Schmidt of two Gaussians)."""
    g = jax.random.normal(key, (2, d))
    u = g[0] / jnp.linalg.norm(g[0])
    v = g[1] - (g[1] @ u) * u
    return u, v / jnp.linalg.norm(v)


def make_spike(d: int, kappa, c, key, normalisation: str = "unit_top") -> Spike:
    """A `Spike` with random `(u, v)` drawn from `key`. Validation lives in `make_problem`."""
    u, v = directions(key, d)
    kappa = jnp.asarray(kappa, dtype=u.dtype)
    scale = 1 / (1 + kappa) if normalisation == "unit_top" else jnp.ones_like(kappa)
    return Spike(u=u, v=v, c=jnp.asarray(c, dtype=u.dtype), kappa=kappa, scale=scale)


def sample_z(key, n: int, d: int, dist: str = "gaussian", nu: float = 5.0):
    """Base draws `z` with i.i.d. unit-variance coordinates; inputs are `x = Sigma^{1/2} z`."""
    if dist == "gaussian":
        return jax.random.normal(key, (n, d))
    if dist == "student_t":
        return jax.random.t(key, nu, (n, d)) * jnp.sqrt((nu - 2) / nu)
    return jax.random.rademacher(key, (n, d)).astype(jnp.result_type(float))


def sample_x(spike: Spike, key, n: int, dist: str = "gaussian", nu: float = 5.0):
    """`n` inputs `x = Sigma^{1/2} z` as an (n, d) array."""
    return spike.sqrt(sample_z(key, n, spike.u.shape[-1], dist, nu))


def estimate_covariance(spike: Spike, key, n_unlabelled: int, dist="gaussian", nu=5.0):
    """`SigmaHat = X^T X / n_unlabelled` from fresh unlabelled inputs (mean known to be 0)."""
    x = sample_x(spike, key, n_unlabelled, dist, nu)
    mat = x.T @ x / n_unlabelled
    mat = (mat + mat.T) / 2
    chol = jnp.linalg.cholesky(mat)
    eye = jnp.eye(mat.shape[0], dtype=mat.dtype)
    mat_inv = jax.scipy.linalg.cho_solve((chol, True), eye)
    return DenseCovariance(mat=mat, mat_inv=mat_inv)
