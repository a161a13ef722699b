"""Where the expectations in a gradient come from: population, empirical, online.

Each source is a small final module with pure `init(key, problem) -> data` and
`risk(w, data, k, problem, cov)`. Samples are kept as base draws `z` (inputs are
`x = Sigma^{1/2} z`) and the neuron uses `<w, x> = <Sigma^{1/2} w, z>`, so configurations
that share a data seed share `z` (common random numbers) and a batch of them turns many
matrix-vector products into one matrix product.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._data import sample_z
from ._network import neuron_norm
from ._population import population_risk


def project(z, s):
    """`z @ s` for base draws `z` (n, d), written as `s @ z^T` so that under `vmap` over `s`
    with `z` shared the product is `S @ z^T` (B, n) and its gradient `R @ z` (B, d): both
    plain GEMMs. `z @ s` would put the batch last, (n, B), and the gradient would contract
    `z`'s leading axis (a transposed-operand GEMM, 30% slower here)."""
    return jax.lax.dot_general(s, z, (((s.ndim - 1,), (1,)), ((), ())))


def sample_risk(w, z, y, problem, cov, weights=None):
    """Risk of one neuron (`a = 1`, `b = 0`) on base draws `z` (n, d) with labels `y` (n,).

    `weights` (n,), summing to 1, replaces the plain mean (used to mask padded samples).
    """
    spike = problem.spike
    pre = project(z, spike.sqrt(w) / neuron_norm(w, cov))
    out = problem.activation(pre)
    losses = -y * out if problem.loss == "correlation" else 0.5 * (out - y) ** 2
    return jnp.mean(losses) if weights is None else weights @ losses


def prefix_mask(n: int, n_used):
    """The first `n_used` of `n` rows (all of them when `n_used` is None)."""
    return jnp.ones(n, bool) if n_used is None else jnp.arange(n) < n_used


def draw(problem, key, n: int):
    """`n` base draws and their labels: `(z, y)`."""
    kz, ke = jax.random.split(key)
    z = sample_z(kz, n, problem.d, problem.input_dist, problem.nu)
    eps = jax.random.normal(ke, (n,), z.dtype)
    return z, problem.labels(z, eps)


class Population(eqx.Module):
    """Exact expectations in closed form."""

    def init(self, key, problem):
        return None

    def risk(self, w, data, k, problem, cov):
        return population_risk(w, problem, cov)

    def train_risk(self, w, data, problem, cov):
        return jnp.full((), jnp.nan, w.dtype)


class Empirical(eqx.Module):
    """`n` fixed labelled samples, full-batch gradient descent on the empirical risk.

    With `n_used` (an array, so it can be vmapped) only the first `n_used` of the `n`
    drawn samples count: runs at several sample sizes share one padded shape, and the
    smaller data sets are nested in the larger ones.
    """

    n: int = eqx.field(static=True)
    n_used: object = None

    def init(self, key, problem):
        z, y = draw(problem, key, self.n)
        if self.n_used is None:
            return z, y, None
        used = prefix_mask(self.n, self.n_used)
        return z, y, used / jnp.sum(used).astype(z.dtype)

    def risk(self, w, data, k, problem, cov):
        z, y, weights = data
        return sample_risk(w, z, y, problem, cov, weights)

    def train_risk(self, w, data, problem, cov):
        return self.risk(w, data, 0, problem, cov)


class Online(eqx.Module):
    """A fresh batch of `batch` samples every step (online SGD); step `k` uses `fold_in(key, k)`."""

    batch: int = eqx.field(static=True)

    def init(self, key, problem):
        return key

    def risk(self, w, data, k, problem, cov):
        z, y = draw(problem, jax.random.fold_in(data, k), self.batch)
        return sample_risk(w, z, y, problem, cov)

    def train_risk(self, w, data, problem, cov):
        return jnp.full((), jnp.nan, w.dtype)


SOURCES = ("population", "empirical", "online")
