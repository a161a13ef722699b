"""Input distributions: the law of the base draws `z`, with inputs `x = Sigma^{1/2} z`.

Each has i.i.d. unit-variance coordinates, so `Cov(x) = Sigma` whatever the law. The
closed-form population expectations are exact for `Gaussian` alone (`is_gaussian`);
every other law runs with sampled sources only, and the population source refuses it.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp


class AbstractInputs(eqx.Module):
    """The law of one coordinate of `z` (zero mean, unit variance, i.i.d.)."""

    is_gaussian = False

    @abc.abstractmethod
    def sample(self, key, shape, dtype=None):
        """Draws of the given shape."""


class Gaussian(AbstractInputs):
    """`z ~ N(0, I)`: the paper's setting."""

    is_gaussian = True

    def sample(self, key, shape, dtype=None):
        return jax.random.normal(key, shape, dtype or jnp.result_type(float))


class StudentT(AbstractInputs):
    """Student-t with `nu > 2` degrees of freedom, rescaled to unit variance (heavy tails)."""

    nu: float = eqx.field(static=True)

    def __check_init__(self):
        if not (isinstance(self.nu, (int, float)) and math.isfinite(self.nu) and self.nu > 2):
            raise ValueError(f"nu={self.nu!r} is not allowed; allowed: a real number > 2 (finite variance)")

    def sample(self, key, shape, dtype=None):
        dtype = dtype or jnp.result_type(float)
        return jax.random.t(key, self.nu, shape, dtype) * jnp.sqrt((self.nu - 2) / self.nu).astype(dtype)


class Rademacher(AbstractInputs):
    """`z_i = +-1` with probability 1/2 each."""

    def sample(self, key, shape, dtype=None):
        return jax.random.rademacher(key, shape).astype(dtype or jnp.result_type(float))
