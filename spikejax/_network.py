"""The two-layer network `f(x) = sum_i a_i phi(<w_i, x> / N(w_i) + b_i)` as an Equinox module.

The neuron normaliser `N` is an `AbstractNeuron` (`_neuron.py`): `Plain()`, `SigmaNorm()`
or `SigmaHatNorm()`; the covariance whose norm it takes is passed as `cov`.
"""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array

from ._hermite import HermiteFunction
from ._neuron import AbstractNeuron, Plain


class TwoLayer(eqx.Module):
    """Width-`m` two-layer network.

    **Fields:** `w` (m, d) first-layer weights; `a` (m,) second layer; `b` (m,) biases;
    `activation`; `neuron` (static: the normaliser, an `AbstractNeuron`).
    """

    w: Array
    a: Array
    b: Array
    activation: HermiteFunction
    neuron: AbstractNeuron = eqx.field(static=True, default=Plain())

    def preactivation(self, x, cov=None):
        """`<w_i, x> / N(w_i) + b_i` for inputs `x` of shape (..., d): shape (..., m)."""
        return x @ (self.w / self.neuron.norm(self.w, cov)[:, None]).T + self.b

    def features(self, x, cov=None):
        return self.activation(self.preactivation(x, cov))

    def __call__(self, x, cov=None):
        """Network output for inputs `x` of shape (..., d); `cov` is the covariance whose norm
        the normaliser takes (`neuron.covariance(...)`; None for the plain neuron)."""
        return self.features(x, cov) @ self.a
