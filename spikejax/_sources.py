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
- `Online(batch, projected=False)`: a fresh batch every step (one-pass SGD). With
  `projected=True` (Gaussian inputs, single-index target) each sample is drawn only in the
  plane of the neuron and the target, and the batch's gradient orthogonal to that plane as
  one Gaussian vector: the same law of the step, at O(d + batch) a step instead of O(d batch).
- `Reused(batch, reuse)`: a fresh batch every `reuse` steps. `reuse=1` is `Online`, and
  `reuse >= steps` is `Empirical(n=batch)`: one knob spans the literature's algorithms.
  Samples consumed: `batch * ceil(steps / reuse)`.
- `Chain(batch, reuse)`: `Online` and `Reused` as the exact Markov chain on the summary
  state (`_chain.py`), at a cost free of `d`; what `reduced=True` runs for them.

Whether the activation can see the target is the source's to say (`check`): the population
gradient has no signal along a blind direction, so `Population` refuses such a pair; the
sampled sources warn, since reusing samples can still learn it (the generative-exponent route).

A source's reduced form is its own: `reduced(...)` returns the source that runs in reduced
coordinates (or raises `ValueError` naming why none is exact), `reduce(problem, w0)` maps
the problem and the start there, `frame` and `lift` move the iterate within and out of them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _chain
from ._chain import Chain
from ._chain_network import NetworkChain, check_network_chain
from ._data import draw, prefix_mask
from ._neuron import neuron_norm
from ._covariance import SpikedCovariance
from ._population import check_closed_form, population_grad, population_risk, spike_constants
from ._source_base import AbstractSource, SourceCost, batch_key, check_count, pointwise_losses
from ._target import project


def sample_risk(w, z, y, problem, cov, weights=None):
    """Risk of one neuron (`a = 1`, `b = 0`) on base draws `z` (n, d) with labels `y` (n,).

    `weights` (n,), summing to 1, replaces the plain mean (used to mask padded samples).
    """
    pre = project(z, problem.covariance.sqrt(w) / neuron_norm(w, cov))
    losses = pointwise_losses(problem, problem.activation(pre), y)
    return jnp.mean(losses) if weights is None else weights @ losses


def sampled_cost(static, frame: int, chain_flops: float) -> SourceCost:
    """The budget of a source that draws `batch` samples a step: O(batch d) in d dimensions, or
    on the exact chain (`reduced`) O(batch) in a float64 frame of `frame` coordinates."""
    b, m = static["batch"], static["width"]
    chain = bool(static["reduced"])
    d, f = (frame, 8) if chain else (static["d"], 4)
    return SourceCost(per_seed=((f"the batch x d draws (batch={b}, d={d})", 3 * b * d * f),),
                      per_config=((f"the per-sample residuals (batch={b})", 10 * m * b * f),),
                      flops=chain_flops if chain else 44 * b * d,  # a GEMM and the fresh normal draws
                      rate=2e9 if chain else 1e10, compile_s=3.0 if chain else 8.0,
                      d=frame if chain else None, itemsize=f)


class Population(AbstractSource):
    """Exact expectations in closed form (Gaussian inputs, single-index target)."""

    default_solver = "dopri5"  # a deterministic field: the flow to a tolerance

    @classmethod
    def cost(cls, static, n_pad):
        flops = 1000 if static["reduced"] else 60 * static["d"]  # 3 coordinates, or O(d)
        if static.get("network"):
            flops += 400 * static["width"]  # the pair sums of the closed form: O(m^2) a step
        return SourceCost(flops=flops, compile_s=3.0 if static["reduced"] else 4.0)

    def check(self, problem):
        check_closed_form(problem)
        problem.check_activation(sampled=False)  # exact here: no signal along a blind direction

    def init(self, key, problem):
        """The loop-invariant constants of the closed-form gradient (one spike), else None."""
        return spike_constants(problem) if isinstance(problem.covariance, SpikedCovariance) else None

    def risk(self, w, data, k, sim):
        return population_risk(w, sim.problem, sim.neuron_cov)

    def grad(self, w, data, k, sim):
        if data is not None and sim.neuron.closed_form:
            return population_grad(w, sim.problem, sim.neuron, data)
        return super().grad(w, data, k, sim)

    def reduced(self, problem, dynamic, solver, *, n_unlabelled=0, **run):
        if n_unlabelled:
            raise ValueError(f"reduced=True is not allowed with n_unlabelled={n_unlabelled}; the 3-coordinate "
                             "population form needs the true Sigma (n_unlabelled=0)")
        if not type(dynamic).reduced_exact:
            raise ValueError(f"reduced=True is not allowed with {type(dynamic).__name__}; it does not declare "
                             "reduced_exact = True (it must commute with rotations fixing the target and "
                             "spike directions): use reduced=False")
        return self


class Empirical(AbstractSource):
    """`n` fixed labelled samples, full-batch gradient descent on the empirical risk."""

    n: int = eqx.field(static=True)
    n_used: object = None

    @classmethod
    def cost(cls, static, n_pad):
        d, m = static["d"], static["width"]
        return SourceCost(per_seed=((f"the n x d samples (n={n_pad}, d={d})", 3 * n_pad * d * 4),),
                          per_config=((f"the per-sample residuals (n={n_pad})", 10 * m * n_pad * 4),),
                          flops=4 * n_pad * d + 30 * n_pad, rate=2e10, compile_s=8.0)

    def __check_init__(self):
        check_count("n", self.n, 1)
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

    def samples(self, data, k, sim):
        return data  # (z, y, weights): the same samples every step

    def samples_used(self, steps):
        return np.where(np.asarray(steps) > 0, self.n, 0) if self.n_used is None else None


class Online(AbstractSource):
    """A fresh batch of `batch` samples every step (one-pass SGD).

    `projected=True` draws the step's law without the samples' full coordinates (Gaussian
    inputs and a single-index target only; see `projected_risk`)."""

    batch: int = eqx.field(static=True)
    projected: bool = eqx.field(static=True, default=False)
    deterministic = False
    reduces_in_frame = True  # the exact chain (`Chain`)

    @classmethod
    def cost(cls, static, n_pad):
        return sampled_cost(static, frame=4, chain_flops=100 * static["batch"])

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        if not isinstance(self.projected, bool):
            raise ValueError(f"projected={self.projected!r} is not allowed; allowed: True or False")

    def check(self, problem):
        super().check(problem)
        if self.projected:
            check_closed_form(problem, "source=Online(projected=True)")

    def init(self, key, problem):
        return key

    def samples(self, data, k, sim):
        return draw(sim.problem, batch_key(data, k), self.batch) + (None,)

    def samples_used(self, steps):
        return self.batch * np.asarray(steps)

    def reduced(self, problem, dynamic, solver, *, network=None, **run):
        if network is not None:  # a width-m network: the chain on its rows' overlaps
            check_network_chain(problem, dynamic, solver, network=network, **run)
            return NetworkChain(self.batch, network.width)
        _chain.check_chain(problem, dynamic, solver, **run)
        return Chain(self.batch, 1)

    def risk(self, w, data, k, sim):
        if self.projected:
            return projected_risk(w, batch_key(data, k), self.batch, sim)
        z, y = draw(sim.problem, batch_key(data, k), self.batch)
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov)


def projected_risk(w, key, batch: int, sim):
    """A surrogate of the risk on `batch` fresh Gaussian samples whose gradient at `w` has
    exactly the law of the sampled gradient, drawn at O(d + batch) cost.

    In base-draw space the neuron reads `<a(w), z>` with `a = Sigma^{1/2} w / N(w)` and the
    label reads `<s, z>` with `s = Sigma^{1/2} u / ||u||_Sigma`. With `e1 = a / |a|` and `e2`
    the unit part of `s` orthogonal to `e1`, a sample is `z = P e1 + Q e2 + z_perp`, and the
    batch gradient is `J_a^T (sum_i g_i z_i) / b` with `g_i` the loss's derivative in the
    pre-activation, a function of `(P_i, Q_i, noise_i)` only. Given those, `sum_i g_i z_perp_i`
    is `N(0, sum_i g_i^2 I_perp)`: one Gaussian vector `xi_perp` times `sqrt(sum g_i^2)`. The
    surrogate's value is the batch risk (the `xi_perp` term vanishes at `w`, as `a` is
    orthogonal to it); its gradient is the sampled one in law. Exact for Gaussian `z` only.
    """
    p = sim.problem
    cov = p.covariance
    a = cov.sqrt(w) / neuron_norm(w, sim.neuron_cov)
    a0 = jax.lax.stop_gradient(a)
    e1 = a0 / jnp.sqrt(a0 @ a0)
    s = cov.sqrt(p.u) / cov.norm(p.u)
    c1 = s @ e1
    r = s - c1 * e1
    c2 = jnp.sqrt(jnp.maximum(r @ r, 0.0))
    tiny = jnp.finfo(w.dtype).eps
    e2 = jnp.where(c2 > tiny, r / jnp.where(c2 > tiny, c2, 1.0), 0.0)
    kp, kq, ke, kx = jax.random.split(key, 4)
    P = jax.random.normal(kp, (batch,), w.dtype)
    Q = jax.random.normal(kq, (batch,), w.dtype)
    eps = jax.random.normal(ke, (batch,), w.dtype)
    xi = jax.random.normal(kx, w.shape, w.dtype)
    xi_perp = xi - (xi @ e1) * e1 - (xi @ e2) * e2
    y = p.link(c1 * P + c2 * Q) + p.noise * eps

    losses = lambda pre: pointwise_losses(p, p.activation(pre), y)
    pre = (a @ e1) * P + (a @ e2) * Q
    g = jax.lax.stop_gradient(jax.grad(lambda q: jnp.sum(losses(q)))(pre))
    scale = jnp.sqrt(g @ g) / batch
    return jnp.mean(losses(pre)) + scale * (a @ xi_perp)


class Reused(AbstractSource):
    """A fresh batch of `batch` samples every `reuse` steps; step `k` uses batch `k // reuse`."""

    batch: int = eqx.field(static=True)
    reuse: int = eqx.field(static=True)
    deterministic = False
    reduces_in_frame = True  # the exact chain (`Chain`)

    @classmethod
    def cost(cls, static, n_pad):
        b = static["batch"]
        return sampled_cost(static, frame=3 + b, chain_flops=4 * b * (b + 3) + 100 * b)  # + the Bartlett factor

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        check_count("reuse", self.reuse, 1)

    def init(self, key, problem):
        return key

    def samples(self, data, k, sim):
        return draw(sim.problem, batch_key(data, k // self.reuse), self.batch) + (None,)

    def samples_used(self, steps):
        """Steps `0 .. k-1` use batches `0 .. (k-1) // reuse`: `batch * ceil(k / reuse)`."""
        return self.batch * (-(-np.asarray(steps) // self.reuse))

    def reduced(self, problem, dynamic, solver, **run):
        _chain.check_chain(problem, dynamic, solver, **run)
        return Chain(self.batch, self.reuse)

    def risk(self, w, data, k, sim):
        z, y = draw(sim.problem, batch_key(data, k // self.reuse), self.batch)
        return sample_risk(w, z, y, sim.problem, sim.neuron_cov)
