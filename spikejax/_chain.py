"""One-pass and reused-batch SGD as an exact Markov chain on the summary state.

Let `H` be the orthogonal maps of `R^d` that fix `u` and `v` (`theta = c u + sqrt(1-c^2) v`).
For Gaussian inputs and the true spiked `Sigma`, the law of one SGD step is `H`-equivariant,
and `X = (<w,u>, <w,v>, |w_perp|)` is a maximal invariant of `H`: by Dynkin's lumping
criterion `X` is a Markov chain, exactly, for every `d`, batch, step, link, activation, loss
and label-noise law. docs/chain.md derives it; this module runs it.

The chain lives in a small frame `(u, v, e3, extra...)`. Before each fresh batch the
iterate is rotated (an element of `H`, invisible to every observable) so that its part
orthogonal to `(u, v)` lies on `e3` alone (`canonical`). Then a sample is
`z = P u + Q v + R e3 + z_perp`, with `(P, Q, R) ~ N(0, I_3)`, and:

- one-pass (`reuse = 1`, frame of 4): the batch gradient's part along `E^perp` is
  `k sqrt(sum_i g_i^2) chi xi_hat / b`, `g_i` the loss derivative of sample `i`,
  `k = sqrt(scale) / N(w)`, `chi ~ chi_{d-3}`; the fourth axis carries `xi_hat`. O(b) a step.
- reused (`reuse > 1`, frame of `3 + b`): the batch's orthogonal parts enter only through
  their Gram matrix, Wishart with `d - 3` degrees of freedom, drawn as `L L^T` by the
  Bartlett decomposition; the frame's last `b` axes carry `L`'s rows. O(b^2) a step.

`d` enters only as degrees of freedom, so it may be any size (and a traced array). The
state is kept in float64: the retraction's shrink per step is `1 / sqrt(1 + delta)`, with
`delta` of order `d^{1-s}` at the calibrated steps (about 1e-9 at s = 4, d = 1024), below
float32's resolution (6e-8), so a float32 chain would lose it entirely.
"""

from __future__ import annotations

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._covariance import SpikedCovariance, dot
from ._neuron import neuron_norm
from ._source_base import AbstractSource, batch_key, check_count, pointwise_losses
from ._target import SingleIndex

FRAME = 3  # (u, v, e3): the coordinates of the state
# The samples' standard normals are drawn in float32 and computed with in float64: half the random
# bits of float64 draws, which bound the chain's rate (1.6-2.7x measured; BENCHMARKS.md). Their law
# differs from N(0, 1) only by float32's quantisation (no draw beyond about 5.4 sigma, probability
# 7e-8 a coordinate), as the d-dimensional engine's float32 draws do. The state stays float64.
DRAW_DTYPE = jnp.float32
PREDRAW_MAX_BATCH = 64  # one-pass batches up to this are drawn a block of steps at a time (`Chain.predraws`)


def whole_blocks(draw):
    """`draw` with its random bits taken two words per threefry block (JAX's original,
    non-partitionable layout) instead of one (the default since jax 0.5): the same generator
    and law at half the hashing, which bounds the chain's rate (x1.8-2.6 measured;
    BENCHMARKS.md). The layout only matters for sharding one array across devices, which the
    chain never does. Scoped to the draw: every other stream is JAX's default."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with jax.threefry_partitionable(False):
            return draw(*args, **kwargs)

    return drawn


def float64_on() -> bool:
    return jnp.zeros(()).dtype == jnp.float64


def chi2(key, df, shape, dtype):
    """`chi^2_df` draws (`df` may be an array, a tracer, or <= 0: then 0)."""
    ok = df > 0
    g = jax.random.gamma(key, jnp.where(ok, df / 2, 1.0), shape, dtype)
    return jnp.where(ok, 2 * g, 0.0)


def canonical(w):
    """`(w.u, w.v, |w_perp|, 0, ...)`: the part orthogonal to `(u, v)` rotated onto `e3`."""
    perp = jnp.sqrt(jnp.sum(w[..., 2:] ** 2, axis=-1))
    return jnp.concatenate([w[..., :2], perp[..., None], jnp.zeros_like(w[..., 3:])], axis=-1)


def spike_cosine(problem):
    """`c = <u, theta>` and `s = |theta - c u|` of a single-spike problem."""
    cov, u = problem.covariance, problem.u
    c = dot(u, cov.theta) / jnp.sqrt(dot(u, u))
    r = cov.theta - c * u
    return c, jnp.sqrt(jnp.maximum(dot(r, r), 0.0))


def frame_problem(problem, size: int, dim=None):
    """`problem` in the frame `(u, v, e3, ...)` of `size` axes, with ambient dimension `dim`."""
    c, s = spike_cosine(problem)
    dtype = jnp.result_type(float)
    e = jnp.eye(size, dtype=dtype)
    theta = c.astype(dtype) * e[0] + s.astype(dtype) * e[1]
    cov = problem.covariance
    covariance = SpikedCovariance(theta=theta, kappa=jnp.asarray(cov.kappa, dtype), scale=jnp.asarray(cov.scale, dtype))
    dim = problem.ambient_d if dim is None else dim
    return eqx.tree_at(
        lambda p: (p.covariance, p.target, p.noise, p.dim),
        problem,
        (covariance, SingleIndex(u=e[0], link=problem.target.link), jnp.asarray(problem.noise, dtype),
         jnp.asarray(dim, dtype)),
        is_leaf=lambda x: x is None,
    )


def frame_coordinates(problem, w0):
    """`(w0.u, w0.v, |w0_perp|)` of a start `w0` in the problem's own coordinates. When
    `theta = u` any fixed unit `v` orthogonal to `u` is exact; the one through `w0` is used."""
    u = problem.u / jnp.sqrt(dot(problem.u, problem.u))
    c, s = spike_cosine(problem)
    tiny = 1e-12
    r = w0 - dot(w0, u) * u
    v_spike = (problem.covariance.theta - c * u) / jnp.where(s > tiny, s, 1.0)
    nr = jnp.sqrt(dot(r, r))
    v = jnp.where(s > tiny, v_spike, r / jnp.where(nr > tiny, nr, 1.0))
    x1, x2 = dot(w0, u), dot(w0, v)
    x3 = jnp.sqrt(jnp.maximum(dot(w0, w0) - x1**2 - x2**2, 0.0))
    return jnp.stack([x1, x2, x3])


def frame_start(key, dim, dtype):
    """A start uniform on the sphere of `R^dim`, in frame coordinates: `(g1, g2, chi_{dim-2})`
    normalised, exactly the law of `frame_coordinates` of a uniform `w0`."""
    kg, kc = jax.random.split(key)
    g = jax.random.normal(kg, (2,), dtype)
    rest = jnp.sqrt(chi2(kc, jnp.asarray(dim, dtype) - 2, (), dtype))
    x = jnp.concatenate([g, rest[None]])
    return x / jnp.sqrt(dot(x, x))


def pad(x, size: int):
    return jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (size - x.shape[-1],), x.dtype)], axis=-1)


def bartlett(key, b: int, df, dtype):
    """A lower-triangular `L` (b, b) with `L L^T ~ Wishart_b(df, I)`: `L_jj^2 ~ chi^2_{df-j}`,
    `L_ij ~ N(0, 1)` below the diagonal. For `df < b` the columns `j >= df` vanish (rank `df`),
    which is the LQ factor of a (b, df) Gaussian matrix, so any `df >= 0` is exact."""
    kd, kl = jax.random.split(key)
    j = jnp.arange(b)
    live = j < df
    diag = jnp.sqrt(chi2(kd, df - j.astype(dtype), (b,), dtype))
    low = jax.random.normal(kl, (b, b), DRAW_DTYPE).astype(dtype) * jnp.tril(jnp.ones((b, b), dtype), -1) * live[None, :]
    return low + jnp.diag(diag)


class ChainDraw(eqx.Module):
    """One batch in frame coordinates: `z` (b, size) the samples, `eps` (b,) label noise, and
    for one-pass `chi` (the norm of a standard Gaussian on `E^perp`; None when reused)."""

    z: jax.Array
    eps: jax.Array
    chi: jax.Array | None


@whole_blocks
def draw_batch(key, batch: int, reuse: int, dim, dtype) -> ChainDraw:
    """The batch's frame coordinates with their exact law (see the module docstring)."""
    kz, ke, kx = jax.random.split(key, 3)
    z = jax.random.normal(kz, (batch, FRAME), DRAW_DTYPE).astype(dtype)
    eps = jax.random.normal(ke, (batch,), DRAW_DTYPE).astype(dtype)
    df = jnp.asarray(dim, dtype) - FRAME
    if reuse == 1:
        return ChainDraw(pad(z, FRAME + 1), eps, jnp.sqrt(chi2(kx, df, (), dtype)))
    return ChainDraw(jnp.concatenate([z, bartlett(kx, batch, df, dtype)], axis=1), eps, None)


def batch_risk(w, batch: ChainDraw, sim, losses):
    """The batch risk in frame coordinates, whose gradient at a canonical `w` is the sampled
    gradient: the batch's own part, plus (one-pass) the part orthogonal to the frame as
    `sqrt(sum g_i^2) chi / b` times the gradient of `<a(w), e4>`, `a(w) = Sigma^{1/2} w / N(w)`."""
    p = sim.problem
    a = p.covariance.sqrt(w) / neuron_norm(w, sim.neuron_cov)
    y = p.labels(batch.z, batch.eps)
    total = lambda pre: jnp.sum(losses(p, p.activation(pre), y))
    pre = batch.z @ a
    risk = total(pre) / y.shape[0]
    if batch.chi is None:
        return risk
    g = jax.lax.stop_gradient(jax.grad(total)(pre))
    scale = jax.lax.stop_gradient(jnp.sqrt(g @ g) * batch.chi / y.shape[0])
    return risk + scale * a[FRAME]


def check_chain(problem, dynamic, solver, *, n_unlabelled=0, neuron=None, network=None):
    """Raise `ValueError` naming why the chain is not exact for this run (else None)."""
    from ._solvers import Euler

    refuse = lambda what, why: ValueError(f"reduced=True is not allowed with {what}; {why}")
    if not problem.inputs.is_gaussian:
        raise refuse(f"inputs={problem.inputs!r}", "the chain needs Gaussian inputs (only then are a sample's "
                     "frame coordinates independent of its orthogonal part): use reduced=False")
    if not isinstance(problem.covariance, SpikedCovariance):
        raise refuse(f"covariance={type(problem.covariance).__name__}", "the chain needs one spike "
                     "(sj.SpikedCovariance): use reduced=False")
    if not isinstance(problem.target, SingleIndex):
        raise refuse(f"target={type(problem.target).__name__}", "the chain covers single-index targets: "
                     "use reduced=False")
    if n_unlabelled:
        raise refuse(f"n_unlabelled={n_unlabelled!r}", "SigmaHat does not commute with the rotations that fix "
                     "u and theta, so the chain needs the true Sigma (n_unlabelled=0)")
    if neuron is not None and not neuron.closed_form:
        raise refuse(f"neuron={neuron.name!r}", "the chain's neuron is 'plain' or 'sigma' (the true Sigma)")
    if type(solver) is not Euler:
        raise refuse(f"solver={type(solver).__name__}", "an optimiser with per-coordinate state (Adam, "
                     "momentum) leaves the frame: the chain runs sj.Euler() (SGD) only")
    if not type(dynamic).reduced_exact:
        raise refuse(f"dynamic={type(dynamic).__name__}", "it does not declare reduced_exact = True (it must "
                     "commute with the rotations fixing u and theta)")
    if network is not None:
        raise refuse("network", "the exact chain of a network covers one-pass SGD (sj.Online(batch)) only; "
                     "use reduced=False")
    if not float64_on():
        raise refuse("float64 off", "the chain keeps its state in float64 (its per-step shrink is below "
                     "float32's resolution): call jax.config.update(\"jax_enable_x64\", True) first")


class AbstractFrameChain(AbstractSource):
    """A sampled source run as an exact chain in a frame of `size` axes (`(u, v, e3)` and the
    batch's): built by `reduced=True` (refused where not exact, `check_chain`), its problem in
    frame coordinates and its start padded to the frame."""

    deterministic = False

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The frame's axes."""

    def reduced(self, problem, dynamic, solver, **run):
        check_chain(problem, dynamic, solver, **run)
        return self

    def reduce(self, problem, w0):
        x0 = w0 if problem.dim is not None else frame_coordinates(problem, w0)
        return frame_problem(problem, self.size), pad(x0, self.size), None

    def init(self, key, problem):
        return key


class Chain(AbstractFrameChain):
    """`Reused(batch, reuse)` (`reuse = 1`: `Online(batch)`) as the exact Markov chain on
    `(<w,u>, <w,v>, |w_perp|)`: the same law of every iterate's overlaps, at O(batch) a step
    one-pass and O(batch^2) reused, whatever `d` (see `py`, docs/chain.md). Built by
    `reduced=True`; its problem is in frame coordinates with `problem.dim = d`, its state
    in float64, and `Trajectory.w` is the final `(<w,u>, <w,v>, |w_perp|)`."""

    batch: int = eqx.field(static=True)
    reuse: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        check_count("reuse", self.reuse, 1)

    @property
    def size(self) -> int:
        """The frame's axes: `(u, v, e3)` plus one for the orthogonal gradient (one-pass) or
        `batch` for the batch's orthogonal parts (reused)."""
        return FRAME + (1 if self.reuse == 1 else self.batch)

    @property
    def predraws(self) -> bool:
        """One-pass at batches up to `PREDRAW_MAX_BATCH`: step `k`'s batch is drawn from its own
        key, so a block of them can be drawn at once (the same draws: the draw is elementwise in
        the key). Measured 1.25-2.1x at batches 1-64 and 0.84x at 256, where a step's own arithmetic
        dominates and the stored block costs memory traffic (BENCHMARKS.md, section 7a)."""
        return self.reuse == 1 and self.batch <= PREDRAW_MAX_BATCH

    def samples_used(self, steps):
        return self.batch * (-(-np.asarray(steps) // self.reuse))

    def frame(self, w, k, sim):
        return jnp.where(k % self.reuse == 0, canonical(w), w) if self.reuse > 1 else canonical(w)

    def lift(self, w, sim):
        return canonical(w)[..., : FRAME]

    def draw(self, data, k, sim, dtype):
        """Batch `k // reuse` in frame coordinates (`ChainDraw`); `data` itself where it is one
        (drawn ahead for a block of steps, `predraws`)."""
        if isinstance(data, ChainDraw):
            return data
        return draw_batch(batch_key(data, k // self.reuse), self.batch, self.reuse, sim.problem.dim, dtype)

    def risk(self, w, data, k, sim):
        return batch_risk(w, self.draw(data, k, sim, w.dtype), sim, pointwise_losses)
