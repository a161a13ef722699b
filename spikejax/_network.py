"""The two-layer network `f(x) = sum_i a_i phi(<w_i, x> / N(w_i) + b_i)` as an Equinox module.

The neuron normaliser `N` is `"plain"` (`N = 1`), `"sigma"` (`||w||_Sigma`, the true
covariance) or `"sigma_hat"` (`||w||_SigmaHat`). A normaliser is resolved to a covariance
object (or None for plain) once, by `neuron_covariance`, and every risk divides by
`neuron_norm(w, cov)`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from ._hermite import HermiteFunction

NEURONS = ("plain", "sigma", "sigma_hat")


def neuron_covariance(neuron: str, covariance, sigma_hat):
    """The covariance whose norm normalises the neuron: None, `covariance` or `sigma_hat`."""
    if neuron == "plain":
        return None
    if neuron == "sigma":
        return covariance
    if sigma_hat is None:
        raise ValueError("neuron='sigma_hat' needs SigmaHat; set n_unlabelled > 0")
    return sigma_hat


def neuron_norm(w, cov):
    """`N(w)`: 1 for the plain neuron, else `||w||` in `cov`'s geometry."""
    if cov is None:
        return jnp.ones(w.shape[:-1], w.dtype)
    return cov.norm(w)


class TwoLayer(eqx.Module):
    """Width-`m` two-layer network.

    **Fields:** `w` (m, d) first-layer weights; `a` (m,) second layer; `b` (m,) biases;
    `activation`; `neuron` (static name of the normaliser).
    """

    w: Array
    a: Array
    b: Array
    activation: HermiteFunction
    neuron: str = eqx.field(static=True, default="plain")

    def preactivation(self, x, cov=None):
        """`<w_i, x> / N(w_i) + b_i` for inputs `x` of shape (..., d): shape (..., m)."""
        return x @ (self.w / neuron_norm(self.w, cov)[:, None]).T + self.b

    def features(self, x, cov=None):
        return self.activation(self.preactivation(x, cov))

    def __call__(self, x, cov=None):
        """Network output for inputs `x` of shape (..., d); `cov` resolves the normaliser."""
        return self.features(x, cov) @ self.a
