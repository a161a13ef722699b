"""What every source shares: the abstract source (the extension point and its hooks), the
pointwise losses, and the key of a fresh batch. The concrete sources live in `_sources.py`,
the exact chains in `_chain.py` and `_chain_network.py`; all of them import this module."""

from __future__ import annotations

import abc
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from ._population import reduce


def pointwise_losses(problem, out, y):
    """The loss of each sample from the neuron's outputs `out` and labels `y` (the problem's
    `loss.pointwise`, in the form the chains take as an argument)."""
    return problem.loss.pointwise(out, y)


def check_count(name, value, lo):
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= {lo}")


@dataclasses.dataclass(frozen=True)
class SourceCost:
    """What a sweep budgets for one configuration of a source, one neuron: `per_seed` and
    `per_config` `(what, bytes)` held on the device, `flops` a step, the `rate` (flop/s) and
    `compile_s` of the pre-flight's time model, and the size `d` and `itemsize` of the state's
    coordinates (a frame of fixed size for the exact chain; None: the problem's `d`)."""

    per_seed: tuple = ()
    per_config: tuple = ()
    flops: float = 0.0
    rate: float = 2e9
    compile_s: float = 4.0
    d: int | None = None
    itemsize: int = 4


class AbstractSource(eqx.Module):
    """Expectations for the gradient; `deterministic` when the same at every step.

    Class attributes a sweep reads: `default_solver` (the registered name of the solver that
    `solver = "auto"` picks) and `reduces_in_frame` (whether `reduced=True` runs it in a
    frame of fixed size, so that the problem is built there at any `d`: the exact chain).
    `predraws`: whether a fixed-step run may draw a block of steps' batches at once
    (`draw(data, k, sim, dtype)` of step `k` depends on `k` alone, and `risk` takes the drawn
    batch in place of `data`)."""

    deterministic = True
    default_solver = "euler"
    reduces_in_frame = False
    predraws = False

    @classmethod
    def cost(cls, static: dict, n_pad: int | None) -> SourceCost:
        """The sweep's budget for one configuration (`static`: the group's config values;
        `n_pad`: its padded sample size). A source of yours may override it; this default
        is a population-like O(d) step."""
        return SourceCost(flops=60 * static["d"])

    def check(self, problem):
        """Raise `ValueError` if this source cannot serve `problem` (called before compiling).
        A source that draws samples only warns about an activation blind to the target (it
        can still learn it by reusing samples); `Population` refuses it."""
        problem.check_activation(sampled=True)

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

    def samples(self, data, k, sim):
        """`(z, y, weights)`: the base draws, labels and sample weights (None: a plain mean) of
        step `k`, which a network's training reads (`network=`); None for a source that draws
        no samples (the population)."""
        return None

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
