"""Where the expectations in a gradient come from.

A source is a small module that carries its sizes: `init(key, problem) -> data` and
`risk(w, data, k, sim)` (the risk whose gradient step `k` follows), `train_risk` for the
record. `AbstractSource` is the extension point; `deterministic` says whether the field
is the same at every step (then the run is an ODE, may be solved adaptively, and is
checked for oscillation at the end).

- `Population()`: exact expectations in closed form (Gaussian inputs, single index).
- `Empirical(n, n_used=None)`: `n` fixed samples, full batch. With `n_used` (an array, so
  it can be vmapped) only the first `n_used` count: sample sizes share one padded shape
  and the smaller data sets are nested in the larger ones.
- `Online(batch)`: a fresh batch every step (one-pass SGD).
- `Reused(batch, reuse)`: a fresh batch every `reuse` steps. `reuse=1` is `Online`, and
  `reuse >= steps` is `Empirical(n=batch)`: one knob spans the literature's algorithms.
  Samples consumed: `batch * ceil(steps / reuse)`.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from ._data import draw, prefix_mask
from ._network import neuron_norm
from ._covariance import SpikedCovariance
from ._population import check_closed_form, population_grad, population_risk, spike_constants
from ._target import project


def sample_risk(w, z, y, problem, cov, weights=None):
    """Risk of one neuron (`a = 1`, `b = 0`) on base draws `z` (n, d) with labels `y` (n,).

    `weights` (n,), summing to 1, replaces the plain mean (used to mask padded samples).
    """
    pre = project(z, problem.covariance.sqrt(w) / neuron_norm(w, cov))
    out = problem.activation(pre)
    losses = -y * out if problem.loss == "correlation" else 0.5 * (out - y) ** 2
    return jnp.mean(losses) if weights is None else weights @ losses


def _int(name, value, lo):
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


class Population(AbstractSource):
    """Exact expectations in closed form (Gaussian inputs, single-index target)."""

    def check(self, problem):
        check_closed_form(problem)

    def init(self, key, problem):
        """The loop-invariant constants of the closed-form gradient (one spike), else None."""
        return spike_constants(problem) if isinstance(problem.covariance, SpikedCovariance) else None

    def risk(self, w, data, k, sim):
        return population_risk(w, sim.problem, sim.neuron_cov)

    def grad(self, w, data, k, sim):
        if data is not None and sim.neuron in ("plain", "sigma"):
            return population_grad(w, sim.problem, sim.neuron, data)
        return super().grad(w, data, k, sim)


class Empirical(AbstractSource):
    """`n` fixed labelled samples, full-batch gradient descent on the empirical risk."""

    n: int = eqx.field(static=True)
    n_used: object = None

    def __check_init__(self):
        _int("n", self.n, 1)
        nu = self.n_used
        if nu is not None and not isinstance(nu, jax.core.Tracer):
            ok = bool(jnp.all((jnp.asarray(nu) >= 1) & (jnp.asarray(nu) <= self.n)))
            if not ok:
                raise ValueError(f"n_used={nu!r} is not allowed; allowed: values in [1, n={self.n}]")

    def init(self, key, problem):
        z, y = draw(problem, key, self.n)
        if self.n_used is None:
            return z, y, None
        used = prefix_mask(self.n, self.n_used)
        return z, y, used / jnp.sum(used).astype(z.dtype)

    def risk(self, w, data, k, sim):
        z, y, weights = data
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov, weights)

    def train_risk(self, w, data, sim):
        return self.risk(w, data, 0, sim)


def _batch_key(key, j):
    """Batch `j`'s key: the source key itself for batch 0 (so that one batch for every step
    draws what `Empirical` draws), `fold_in(key, j)` after."""
    return jax.lax.cond(j == 0, lambda: key, lambda: jax.random.fold_in(key, j))


class Online(AbstractSource):
    """A fresh batch of `batch` samples every step (one-pass SGD)."""

    batch: int = eqx.field(static=True)
    deterministic = False

    def __check_init__(self):
        _int("batch", self.batch, 1)

    def init(self, key, problem):
        return key

    def risk(self, w, data, k, sim):
        z, y = draw(sim.problem, _batch_key(data, k), self.batch)
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov)


class Reused(AbstractSource):
    """A fresh batch of `batch` samples every `reuse` steps; step `k` uses batch `k // reuse`."""

    batch: int = eqx.field(static=True)
    reuse: int = eqx.field(static=True)
    deterministic = False

    def __check_init__(self):
        _int("batch", self.batch, 1)
        _int("reuse", self.reuse, 1)

    def init(self, key, problem):
        return key

    def risk(self, w, data, k, sim):
        z, y = draw(sim.problem, _batch_key(data, k // self.reuse), self.batch)
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov)
