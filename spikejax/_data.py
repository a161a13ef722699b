"""Samples: base draws `z` and labels, inputs `x = Sigma^{1/2} z`, and `SigmaHat`.

Samples are kept as base draws `z` (n, d); the neuron uses `<w, x> = <Sigma^{1/2} w, z>`,
so configurations that share a data seed share `z` (common random numbers) and a batch of
them turns many matrix-vector products into one matrix product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._covariance import DenseCovariance


def draw(problem, key, n: int):
    """`n` base draws and their labels: `(z, y)`."""
    kz, ke = jax.random.split(key)
    z = problem.inputs.sample(kz, (n, problem.d))
    eps = jax.random.normal(ke, (n,), z.dtype)
    return z, problem.labels(z, eps)


def sample_x(problem, key, n: int):
    """`n` inputs `x = Sigma^{1/2} z` as an (n, d) array."""
    return problem.covariance.sqrt(problem.inputs.sample(key, (n, problem.d)))


def estimate_covariance(problem, key, n_unlabelled: int) -> DenseCovariance:
    """`SigmaHat = X^T X / n_unlabelled` from fresh unlabelled inputs (mean known to be 0)."""
    x = sample_x(problem, key, n_unlabelled)
    return DenseCovariance.make(x.T @ x / n_unlabelled)


def prefix_mask(n: int, n_used):
    """The first `n_used` of `n` rows (all of them when `n_used` is None)."""
    return jnp.ones(n, bool) if n_used is None else jnp.arange(n) < n_used
