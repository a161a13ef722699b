"""What every source shares: the abstract source (the extension point and its hooks), the
pointwise losses, and the key of a fresh batch. The concrete sources live in `_sources.py`,
the exact chains in `_chain.py` and `_chain_network.py`; all of them import this module."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from ._population import reduce


def pointwise_losses(problem, out, y):
    """The loss of each sample from the neuron's outputs `out` and labels `y`."""
    return -y * out if problem.loss == "correlation" else 0.5 * (out - y) ** 2


def check_count(name, value, lo):
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= {lo}")


class AbstractSource(eqx.Module):
    """Expectations for the gradient; `deterministic` when the same at every step."""

    deterministic = True

    def check(self, problem):
        """Raise `ValueError` if this source cannot serve `problem` (called before compiling)."""

    @abc.abstractmethod
    def init(self, key, problem):
        """The source's data (samples, a key, or None)."""

    @abc.abstractmethod
    def risk(self, w, data, k, sim):
        """The risk whose gradient the step `k` follows."""

    def grad(self, w, data, k, sim):
        """`grad risk(w)`; a source with a closed form overrides it."""
        return jax.grad(self.risk)(w, data, k, sim)

    def train_risk(self, w, data, sim):
        """The risk on the training samples, recorded beside the population risk."""
        return jnp.full((), jnp.nan, w.dtype)

    def samples_used(self, steps):
        """Labelled samples consumed by the first `steps` steps (numpy arrays welcome);
        None when the source draws no samples (the population)."""
        return None

    def reduced(self, problem, dynamic, solver, **run) -> "AbstractSource":
        """The source that runs this one exactly in reduced coordinates, or a `ValueError`
        naming why there is none (`run`: `n_unlabelled`, `neuron`, `network`)."""
        raise ValueError(f"reduced=True is not allowed with source={type(self).__name__}; it has no exact "
                         "reduced form: use reduced=False")

    def reduce(self, problem, w0):
        """`(problem, w0, basis)` in this (reduced) source's coordinates; `basis` lifts back."""
        return reduce(problem, w0)

    def frame(self, w, k, sim):
        """The iterate before step `k`, moved by a symmetry of the problem if the source
        needs it (the chain rotates its orthogonal part onto one axis); identity here."""
        return w

    def lift(self, w, sim):
        """The final iterate in the caller's coordinates."""
        return w if sim.basis is None else w @ sim.basis


def batch_key(key, j):
    """Batch `j`'s key: the source key itself for batch 0 (so that one batch for every step
    draws what `Empirical` draws), `fold_in(key, j)` after."""
    return jax.lax.cond(j == 0, lambda: key, lambda: jax.random.fold_in(key, j))
