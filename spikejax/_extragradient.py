"""Extragradient ("displaced") SGD, EgD, of Arnaboldi, Dandi, Krzakala, Pesce and Stephan,
"Repetita Iuvant: Data Repetition Allows SGD to Learn High-Dimensional Multi-Index
Functions" (2024, arXiv:2405.15459; their code: `DisplacedSGD` in IdePHICS/giant-learning).

Step `k` draws a fresh batch of `b` samples, as `Online(b)` does (the same draws), moves the
iterate along each sample's own gradient and takes that sample's gradient there:

    w~_i = w - rho grad l_i(w),   g = (1/b) sum_i grad l_i(w~_i),   rho = displacement / d,

`l_i` the pointwise loss of sample `i` (the problem's loss on the run's neuron), and the
dynamic moves `w` along `g` (`direction`, `retract`) as for any source. `rho > 0` is their
extragradient; `rho < 0` their (unnormalised) sharpness-aware step; `rho = 0` is `Online`.
The displacement is raw, as in their code (`SphericalDisplacedSGD` projects only the outer
step). `displacement = rho d` is their `rho_prefactor` (`rho = rho_prefactor p / d`, one
neuron `p = 1`): a sample's gradient is `l' phi' x_i` with `|x_i|^2 ~ d`, so `rho ~ 1/d`
shifts the sample's own pre-activation by `O(1)`, which is what lets one fresh sample act as
a repeated one (the reuse that beats the information exponent; docs/reuse.md).

`reduced=True` runs it exactly as a chain (`ExtraGradientChain`): all of `w~_i` and the step
live in `span(u, v, w, z_1 .. z_b)`, so the frame of `Reused`'s chain (`(u, v, e3)` plus the
batch's orthogonal parts through the Bartlett factor of their Gram matrix) holds one step
exactly, with a fresh batch and a fresh rotation every step: O(b^2) a step whatever `d`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._chain import FRAME, AbstractFrameChain, canonical, check_chain, draw_batch
from ._data import draw
from ._source_base import AbstractSource, batch_key, check_count, pointwise_losses
from ._sources import sample_risk, sampled_cost
from ._target import project


def check_displacement(value):
    """Raise `ValueError` unless `value` is a finite real number (a Python or numpy scalar)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise ValueError(f"displacement={value!r} is not allowed; allowed: a finite real number (rho d, "
                         "Arnaboldi et al.'s rho_prefactor: > 0 extragradient, 0 online SGD, < 0 SAM-like)")


def displaced_grad(w, z, y, sim, displacement):
    """EgD's gradient on base draws `z` (b, D) with labels `y` (b,): the mean over samples of
    `grad l_i` at `w - rho grad l_i(w)`, `rho = displacement / d` (`d`: the inputs' dimension,
    `problem.ambient_d`, also for a problem held in frame coordinates). The plain neuron has
    a closed form at the cost of one more pass over `z` than `Online`; any other normaliser
    takes per-sample gradients, (b, D) arrays."""
    rho = jnp.asarray(displacement, w.dtype) / jnp.asarray(sim.problem.ambient_d, w.dtype)
    if sim.neuron_cov is None:
        return plain_displaced_grad(w, z, y, sim.problem, rho)
    p, cov = sim.problem, sim.neuron_cov
    one = lambda v, zi, yi: sample_risk(v, zi[None], yi[None], p, cov)  # the loss of one sample
    per_sample = jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(w, z, y)  # (b, D)
    return jnp.mean(jax.vmap(jax.grad(one))(w - rho * per_sample, z, y), axis=0)


def plain_displaced_grad(w, z, y, problem, rho):
    """The plain neuron's EgD gradient in closed form. With `x_i = Sigma^{1/2} z_i` and
    `l_i'` the loss's derivative in the pre-activation, `grad l_i(w) = l_i'(<w, x_i>) x_i`, so
    the displaced pre-activation is `<w, x_i> - rho l_i'(<w, x_i>) |x_i|^2` (`|x_i|^2 =
    z_i^T Sigma z_i`) and the step's gradient is `Sigma^{1/2} sum_i l_i'(displaced_i) z_i / b`."""
    cov = problem.covariance
    total = lambda pre: jnp.sum(pointwise_losses(problem, problem.activation(pre), y))
    slope = jax.grad(total)  # each sample's l_i' (the sum decouples)
    pre = project(z, cov.sqrt(w))
    sq = jnp.sum(z * cov.apply(z), axis=-1)
    g = slope(pre - rho * slope(pre) * sq)
    return cov.sqrt(g @ z) / y.shape[0]


class ExtraGradient(AbstractSource):
    """Extragradient SGD (EgD, Arnaboldi et al. 2024): a fresh batch of `batch` samples every
    step, each sample's gradient taken at the iterate displaced along that sample's own
    gradient by `rho = displacement / d`.

    **Arguments:**
    - `batch`: samples a step, an integer >= 1 (their `n`; the large-batch experiment has `2d`).
    - `displacement`: `rho d`, a finite real number (their `rho_prefactor`; 0.1 in their
      experiments); 0 is `sj.Online(batch)` on the same draws, < 0 a SAM-like step.

    Samples consumed: `batch` a step. A width-m network is refused (it has no `samples`)."""

    batch: int = eqx.field(static=True)
    displacement: float = eqx.field(static=True)
    deterministic = False
    reduces_in_frame = True  # the exact chain (`ExtraGradientChain`)

    @classmethod
    def cost(cls, static, n_pad):
        """`Online`'s budget plus the displaced per-sample gradients, (batch, d) per configuration
        (on the chain: `Reused`'s frame of `3 + batch`, three passes over it)."""
        b, d = static["batch"], static["d"]
        base = sampled_cost(static, frame=FRAME + b, chain_flops=12 * b * (b + FRAME) + 100 * b)
        if static["reduced"]:
            return base
        extra = ((f"the displaced per-sample gradients (batch={b}, d={d})", 4 * b * d * 4),)
        return dataclasses.replace(base, flops=base.flops + 60 * b * d, per_config=base.per_config + extra)

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        check_displacement(self.displacement)

    def init(self, key, problem):
        return key

    def draw(self, data, k, sim):
        """Step `k`'s batch `(z, y)`: the draws of `sj.Online(batch)` at step `k`."""
        return draw(sim.problem, batch_key(data, k), self.batch)

    def risk(self, w, data, k, sim):
        """The batch risk at `w` itself (what `sj.Online` follows; EgD's step is `grad`)."""
        z, y = self.draw(data, k, sim)
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov)

    def grad(self, w, data, k, sim):
        return self.batch_grad(w, *self.draw(data, k, sim), sim)

    def batch_grad(self, w, z, y, sim):
        """EgD's gradient at `w` on the batch `z` (b, d) with labels `y` (b,): what `grad` takes
        on step `k`'s draws (exposed so that a test can feed it samples of its own)."""
        return displaced_grad(w, z, y, sim, self.displacement)

    def samples_used(self, steps):
        return self.batch * np.asarray(steps)

    def reduced(self, problem, dynamic, solver, **run):
        check_chain(problem, dynamic, solver, **run)
        return ExtraGradientChain(self.batch, self.displacement)


class ExtraGradientChain(AbstractFrameChain):
    """`ExtraGradient(batch, displacement)` as the exact Markov chain on
    `(<w,u>, <w,v>, |w_perp|)` (Gaussian inputs, one spike, single index, `sj.Euler()`; see
    `sj.Chain`): each step a fresh batch in the frame `(u, v, e3, f_1 .. f_b)`, its
    orthogonal parts through the Bartlett factor of their Gram matrix (Wishart, `d - 3`
    degrees of freedom), the iterate rotated first so that its orthogonal part lies on `e3`.
    Built by `reduced=True`; state in float64; O(b^2) a step whatever `d`."""

    batch: int = eqx.field(static=True)
    displacement: float = eqx.field(static=True)

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        check_displacement(self.displacement)

    @property
    def size(self) -> int:
        """The frame's axes: `(u, v, e3)` and one per sample for the batch's orthogonal parts."""
        return FRAME + self.batch

    def samples_used(self, steps):
        return self.batch * np.asarray(steps)

    def frame(self, w, k, sim):
        return canonical(w)  # a fresh batch every step: rotate before each

    def lift(self, w, sim):
        return canonical(w)[..., :FRAME]

    def draw(self, data, k, sim, dtype):
        """Step `k`'s batch in frame coordinates: `z` (b, 3 + b) and the label noise `eps` (b,),
        drawn as a reused batch's (the Bartlett factor of its orthogonal parts): each sample
        serves twice within the step."""
        batch = draw_batch(batch_key(data, k), self.batch, 2, sim.problem.dim, dtype)
        return batch.z, batch.eps

    def batch_grad(self, w, z, y, sim):
        """EgD's gradient at a canonical `w` on frame samples `z` (b, 3 + b) with labels `y`."""
        return displaced_grad(w, z, y, sim, self.displacement)

    def risk(self, w, data, k, sim):
        z, eps = self.draw(data, k, sim, w.dtype)
        return sample_risk(w, z, sim.problem.labels(z, eps), sim.problem, sim.neuron_cov)

    def grad(self, w, data, k, sim):
        z, eps = self.draw(data, k, sim, w.dtype)
        return self.batch_grad(w, z, sim.problem.labels(z, eps), sim)
