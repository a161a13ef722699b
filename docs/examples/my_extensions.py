# Extending spikejax by name: one class of every kind, written and registered in a file of your own.
# --8<-- [start:extensions]
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj


@functools.partial(sj.register, "dynamic", "half_spherical")
class HalfSpherical(sj.Spherical):
    """The spherical flow at half speed: a step dt of it is a step dt / 2 of sj.Spherical."""

    def direction(self, w, grad, sim):
        return 0.5 * super().direction(w, grad, sim)


@functools.partial(sj.register, "source", "fresh_every_r")
class FreshEveryR(sj.AbstractSource):
    """A fresh batch of `batch` samples every `reuse` steps (what sj.Reused does). A sweep fills
    the fields from the config keys of the same name, `batch` and `reuse`."""

    batch: int = eqx.field(static=True)
    reuse: int = eqx.field(static=True, default=1)
    deterministic = False  # fresh samples: Euler-type solvers only

    def init(self, key, problem):
        return key  # batches are drawn on the fly from this key

    def risk(self, w, key, k, sim):
        j = k // self.reuse
        batch_key = jax.lax.cond(j == 0, lambda: key, lambda: jax.random.fold_in(key, j))
        z, y = sj.draw(sim.problem, batch_key, self.batch)
        return sj.sample_risk(w, z, y, sim.problem, sim.neuron_cov)

    def samples_used(self, steps):  # what sj.passage_n counts as samples
        return self.batch * -(-np.asarray(steps) // self.reuse)

    @classmethod
    def cost(cls, static, n_pad):  # what a sweep's pre-flight budgets: the batch, O(batch d) a step
        b, d = static["batch"], static["d"]
        return sj.SourceCost(per_seed=((f"the batch (batch={b}, d={d})", 3 * b * d * 4),), flops=44 * b * d,
                             rate=1e10, compile_s=8.0)


@functools.partial(sj.register, "solver", "heun")
class Heun(sj.AbstractSolver):
    """Heun's method (the explicit trapezoid): second order, two field evaluations a step."""

    def step(self, field, w, h, state):
        k1 = field(w)
        k2 = field(w - h * k1)
        return w - 0.5 * h * (k1 + k2), jnp.zeros((), w.dtype), state


@functools.partial(sj.register, "loss", "doubled_correlation")
class DoubledCorrelation(sj.AbstractLoss):
    """`-2 y f`: the correlation loss at twice the scale (a step dt of it is a step 2 dt of `-y f`)."""

    name = "doubled_correlation"
    quadratic = False  # no E[f^2] term

    def pointwise(self, out, y):
        return -2.0 * y * out

    def population(self, second, cross, target):
        return -2.0 * cross

    def noise_floor(self, noise):
        return 0.0


@functools.partial(sj.register, "input_dist", "uniform")
class Uniform(sj.AbstractInputs):
    """z_i uniform on [-sqrt 3, sqrt 3]: zero mean, unit variance, bounded (sampled sources only)."""

    def sample(self, key, shape, dtype=None):
        dtype = dtype or jnp.result_type(float)
        return jax.random.uniform(key, shape, dtype, -math.sqrt(3), math.sqrt(3))


def h2_plus_h3(x):
    """h2(x) + 0.5 h3(x), with h_j = He_j / sqrt(j!): information exponent 2."""
    return (x**2 - 1) / math.sqrt(2) + 0.5 * (x**3 - 3 * x) / math.sqrt(6)


sj.register("link", "h2_plus_h3", h2_plus_h3)  # a link (or activation): a callable, coefficients or a HermiteFunction
sj.register("target", "pair_h2", {(2, 0): 1 / math.sqrt(2), (0, 2): 1 / math.sqrt(2)})  # a 2-index target
# --8<-- [end:extensions]
