"""The neuron's normaliser `N` in `phi(<w, x> / N(w))`: `Plain()`, `SigmaNorm()` or `SigmaHatNorm()`.

`Plain()` is `N = 1`; `SigmaNorm()` is `N = ||w||_Sigma` in the true covariance; and
`SigmaHatNorm()` is `N = ||w||_SigmaHat` in the covariance estimated from unlabelled
samples. A run resolves its normaliser once to the covariance whose norm it takes
(`covariance`: None for the plain neuron), and every risk divides by `neuron_norm(w, cov)`.
Two flags say which closed forms hold: `closed_form` (`N` reads the true `Sigma` or
nothing, so the population risk is a function of the overlaps with a gradient by hand, and
the exact chain's symmetry holds) and `unit_scale` (every pre-activation has unit variance).
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from equinox import AbstractClassVar


def neuron_norm(w, cov):
    """`N(w)`: 1 for the plain neuron (`cov=None`), else `||w||` in `cov`'s geometry."""
    if cov is None:
        return jnp.ones(w.shape[:-1], w.dtype)
    return cov.norm(w)


class AbstractNeuron(eqx.Module):
    """A neuron normaliser. Class attributes: `name` (its name in configs and messages);
    `closed_form` (`N(w)` is 1 or `||w||_Sigma` in the true `Sigma`: the population
    gradients by hand, `population_grad` and `committee_grad`, and the exact chain apply);
    `unit_scale` (`N(w) = ||w||_Sigma`: the pre-activation's scale `||w||_Sigma / N(w)` is 1);
    `needs_sigma_hat` (it reads `SigmaHat`, so a run needs `n_unlabelled > 0`)."""

    name: AbstractClassVar[str]
    closed_form: ClassVar[bool] = False
    unit_scale: ClassVar[bool] = False
    needs_sigma_hat: ClassVar[bool] = False

    @abc.abstractmethod
    def covariance(self, covariance, sigma_hat):
        """The covariance whose norm is `N` (None for `N = 1`), from the problem's `covariance`
        and the estimate `sigma_hat` (None when none was drawn)."""

    def norm(self, w, cov):
        """`N(w)`, `cov` the covariance from `covariance(...)`."""
        return neuron_norm(w, cov)

    def estimated(self):
        """The normaliser a run uses by default when it draws `SigmaHat` (`n_unlabelled > 0`):
        `SigmaNorm` becomes `SigmaHatNorm`, the others stay."""
        return self


class Plain(AbstractNeuron):
    """`N(w) = 1`: the neuron `phi(<w, x>)`."""

    name = "plain"
    closed_form = True

    def covariance(self, covariance, sigma_hat):
        return None

    def norm(self, w, cov):
        return neuron_norm(w, None)


class SigmaNorm(AbstractNeuron):
    """`N(w) = ||w||_Sigma`, the true covariance: the pre-activation is `N(0, 1)` for every `w`."""

    name = "sigma"
    closed_form = True
    unit_scale = True

    def covariance(self, covariance, sigma_hat):
        return covariance

    def estimated(self):
        return SigmaHatNorm()


class SigmaHatNorm(AbstractNeuron):
    """`N(w) = ||w||_SigmaHat`, the covariance estimated from `n_unlabelled` samples."""

    name = "sigma_hat"
    needs_sigma_hat = True

    def covariance(self, covariance, sigma_hat):
        if sigma_hat is None:
            raise ValueError("neuron='sigma_hat' needs SigmaHat; set n_unlabelled > 0")
        return sigma_hat
