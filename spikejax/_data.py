"""Samples: base draws `z` and labels, inputs `x = Sigma^{1/2} z`, and `SigmaHat`.

Samples are kept as base draws `z` (n, d); the neuron uses `<w, x> = <Sigma^{1/2} w, z>`,
so configurations that share a data seed share `z` (common random numbers) and a batch of
them turns many matrix-vector products into one matrix product.
"""

from __future__ import annotations

from typing import NamedTuple

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


class ConfigKeys(NamedTuple):
    """The key layout of one configuration seed, in one place (sweeps, benchmarks and tests
    use it): `problem` draws the directions `(u, v)`; `run` is `simulate`'s key (`w(0)`,
    samples, `SigmaHat`); `readout` draws phase 2; `neuron(i)` is neuron i's `w(0)` in a
    width-m first layer."""

    root: object
    problem: object
    run: object
    readout: object

    def neuron(self, i):
        return jax.random.fold_in(self.root, 3 + i)


def config_keys(seed) -> ConfigKeys:
    """`ConfigKeys` of an integer seed or a root key: `fold_in(root, 0 / 1 / 2 / 3 + i)`. A
    configuration's randomness depends on its seed alone, not on the grid around it."""
    root = jax.random.key(seed) if isinstance(seed, int) else seed
    return ConfigKeys(root, jax.random.fold_in(root, 0), jax.random.fold_in(root, 1), jax.random.fold_in(root, 2))
