"""One-pass SGD of a width-`m` network as an exact Markov chain on its rows' overlaps.

The one-neuron chain (`_chain.py`) extends to a network trained jointly by online SGD
(`simulate(..., sj.Online(b), network=sj.Network(width=m, ...), reduced=True)`); the
derivation is in docs/chain_network.md.

`H`, the orthogonal maps of `R^d` fixing `u` and `v`, fixes `theta`, `Sigma` and the label;
for Gaussian inputs the law of one step of the rows `W` (m, d) is `H`-equivariant under
every `reduced_exact` dynamic (Spherical, Normalized, Preconditioned with the true `Sigma`,
Vanilla), and `a`, `b` are `H`-invariant. A maximal invariant of `H` acting on `W` is
`(W u, W v, W_perp W_perp^T)`, so it (with `a`, `b`) is a Markov chain, exactly, at every `d`.

The chain's frame has `2 + 2m` axes: `(u, v)`, then `m` axes that carry the rows' parts
orthogonal to `(u, v)` (lower-triangular after `canonical_rows`, an element of `H`) and
`m` free axes. A sample is `z = F Z + z_perp`, `Z ~ N(0, I_{2+m})` on the first `2 + m`
axes, independent of `z_perp`. Row `j`'s batch gradient reads `z_perp` only through
`Y_j = sum_i h_ij z_i^perp`, `h_ij = g_ij / b` (`g_ij` the loss derivative in row `j`'s
pre-activation): given the `Z_i`, `Y = C N` with `C C^T = h^T h` and `N` an `(m, d-2-m)`
standard Gaussian matrix, and `N = L Q` with `L` Bartlett (`_chain.bartlett`) and `Q` with
orthonormal rows independent of `L`. Rotating `Q`'s rows onto the free axes (again in `H`)
puts `C L` there. A step costs `O(b m^2 + m^3)`, whatever `d`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _chain
from ._neuron import neuron_norm
from ._source_base import AbstractSource, batch_key, check_count, pointwise_losses
from ._target import project


def size(m: int) -> int:
    """The frame's axes for width `m`: `(u, v)`, `m` for the rows, `m` free."""
    return 2 + 2 * m


def canonical_rows(w):
    """`w` (m, 2 + 2m) with its part orthogonal to `(u, v)` rotated onto the first `m`
    perpendicular axes as a lower-triangular block (`P = R^T Q^T`, LQ): an element of `H`,
    so every overlap is unchanged; the last `m` axes are left free (zero)."""
    m = w.shape[-2]
    r = jnp.linalg.qr(jnp.swapaxes(w[..., 2:], -1, -2), mode="r")  # (m, m): P^T = Q R
    return jnp.concatenate([w[..., :2], jnp.swapaxes(r, -1, -2), jnp.zeros_like(w[..., 2 + m:])], axis=-1)


def psd_sqrt(g):
    """A symmetric `C` with `C C^T = g` for a positive semi-definite `g` (rank deficient
    included: a dead neuron's zero row and column stay zero, with no jitter)."""
    lam, vec = jnp.linalg.eigh(g)
    return (vec * jnp.sqrt(jnp.maximum(lam, 0.0))) @ jnp.swapaxes(vec, -1, -2)


class NetworkDraw(eqx.Module):
    """One batch in frame coordinates: `z` (b, 2 + 2m) (the last `m` axes zero), `eps`
    (b,) label noise, `bartlett` (m, m) the `L` of `N = L Q` (the orthogonal parts)."""

    z: jax.Array
    eps: jax.Array
    bartlett: jax.Array

    def orthogonal(self, h):
        """The coordinates on the free axes of `Y_j = sum_i h_ij z_i^perp` (rows `j`): `C L`."""
        return psd_sqrt(h.T @ h) @ self.bartlett


@_chain.whole_blocks
def draw_batch(key, batch: int, m: int, dim, dtype) -> NetworkDraw:
    """A batch's frame coordinates with their exact law; `dim < m + 2` (a traced `d`
    that the frame cannot hold) gives NaN, so the run is marked non-finite."""
    kz, ke, kl = jax.random.split(key, 3)
    z = jax.random.normal(kz, (batch, 2 + m), _chain.DRAW_DTYPE).astype(dtype)
    eps = jax.random.normal(ke, (batch,), _chain.DRAW_DTYPE).astype(dtype)
    df = jnp.asarray(dim, dtype) - 2 - m
    low = _chain.bartlett(kl, m, df, dtype)
    low = jnp.where(df >= 0, low, jnp.nan)
    return NetworkDraw(_chain.pad(z, size(m)), eps, low)


def chain_risk(w, draw: NetworkDraw, sim):
    """The batch risk of the flat network state `w` in frame coordinates, whose gradient
    at a canonical state is the sampled gradient: the network's loss on the batch's frame
    part, plus `sum_j <a(w_j), Y_j>` with `Y` (stopped) on the free axes, `a(w) = Sigma^{1/2}
    w / N(w)`. That term vanishes at `w` (its rows have no free part) and its gradient in
    `w_j` is `J_j^T Y_j = sqrt(scale) Y_j / N(w_j)`: the gradient's orthogonal part."""
    lay = sim.dynamic.layout
    W, a, b = lay.unflatten(w)
    m = W.shape[0]
    p = sim.problem
    s = p.covariance.sqrt(W) / neuron_norm(W, sim.neuron_cov)[:, None]
    y = p.labels(draw.z, draw.eps)
    n = y.shape[0]

    def total(pre):  # pre (m, b)
        out = a @ p.activation(pre + b[:, None])
        return jnp.sum(pointwise_losses(p, out, y))

    pre = project(draw.z, s)
    h = jax.lax.stop_gradient(jax.grad(total)(pre)).T / n  # (b, m)
    ortho = jax.lax.stop_gradient(draw.orthogonal(h))  # (m, m)
    return total(pre) / n + jnp.sum(s[:, 2 + m:] * ortho)


def frame_rows(problem, w0):
    """`w0` (m, d) in the frame: `(W u, W v, R^T, 0)` with `W_perp = R^T Q^T`. When
    `theta = u` any unit `v` orthogonal to `u` is exact; the one through the first row is used."""
    u = problem.u / jnp.sqrt(problem.u @ problem.u)
    c, s = _chain.spike_cosine(problem)
    tiny = 1e-12
    r = w0[0] - (w0[0] @ u) * u
    nr = jnp.sqrt(r @ r)
    v_spike = (problem.covariance.theta - c * u) / jnp.where(s > tiny, s, 1.0)
    v = jnp.where(s > tiny, v_spike, r / jnp.where(nr > tiny, nr, 1.0))
    wu, wv = w0 @ u, w0 @ v
    perp = w0 - wu[:, None] * u - wv[:, None] * v
    m = w0.shape[0]
    rt = jnp.linalg.qr(perp.T, mode="r").T
    return jnp.concatenate([wu[:, None], wv[:, None], rt, jnp.zeros((m, m), w0.dtype)], axis=1)


def frame_start_rows(key, m: int, dim, dtype):
    """`m` independent rows uniform on the sphere of `R^dim`, in frame coordinates `(m, 2 + m)`:
    `(G, L)` row-normalised, `G` (m, 2) Gaussian, `L` Bartlett with `dim - 2` degrees of
    freedom (the LQ factor of the rows' Gaussian parts orthogonal to `(u, v)`)."""
    kg, kl = jax.random.split(key)
    g = jax.random.normal(kg, (m, 2), dtype)
    low = _chain.bartlett(kl, m, jnp.asarray(dim, dtype) - 2, dtype)
    x = jnp.concatenate([g, low], axis=1)
    return x / jnp.linalg.norm(x, axis=1, keepdims=True)


def check_network_chain(problem, dynamic, solver, *, network, **run):
    """`_chain.check_chain`'s conditions, and the frame must fit: `m <= d - 2`."""
    _chain.check_chain(problem, dynamic, solver, **run)
    m, d = network.width, problem.ambient_d
    if not isinstance(d, jax.core.Tracer) and m > float(np.asarray(d)) - 2:
        raise ValueError(f"reduced=True is not allowed with network width {m} > d - 2 = {float(np.asarray(d)) - 2:g}; "
                         "the chain's frame holds u, v and the m rows in R^d: use reduced=False")


class NetworkChain(AbstractSource):
    """`Online(batch)` for a width-`width` network (`network=sj.Network(...)`) as the exact
    Markov chain on `(W u, W v, W_perp W_perp^T)` and `a`, `b` (see the module docstring).
    Built by `reduced=True`; its problem is in the frame `(u, v, 2m axes)` with
    `problem.dim = d`, its state in float64, and `Trajectory.w` is the final `TwoLayer`
    whose `w` (m, 2 + m) holds `(W u, W v, R^T)`, `W_perp W_perp^T = R^T R`."""

    batch: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    deterministic = False

    def __check_init__(self):
        check_count("batch", self.batch, 1)
        check_count("width", self.width, 1)

    @property
    def size(self) -> int:
        return size(self.width)

    def reduced(self, problem, dynamic, solver, *, network=None, **run):
        if network is None or network.width != self.width:
            raise ValueError("reduced=True is not allowed with source=NetworkChain without network=sj.Network("
                             f"width={self.width}); pass sj.Online(batch) with the network instead")
        check_network_chain(problem, dynamic, solver, network=network, **run)
        return self

    def reduce(self, problem, w0):
        if problem.dim is not None:  # already in frame coordinates: (m, 2 + m) or (m, 2 + 2m)
            x0 = _chain.pad(w0, self.size)
        else:
            x0 = frame_rows(problem, w0)
        return _chain.frame_problem(problem, self.size), x0, None

    def init(self, key, problem):
        return key

    def samples_used(self, steps):
        return self.batch * np.asarray(steps)

    def frame(self, w, k, sim):
        lay = sim.dynamic.layout
        W, a, b = lay.unflatten(w)
        return lay.flatten(canonical_rows(W), a, b)

    def lift_rows(self, w):
        """The rows `(m, 2 + 2m)` as `(W u, W v, R^T)` (m, 2 + m)."""
        return canonical_rows(w)[..., : 2 + self.width]

    def draw(self, data, k, sim, dtype) -> NetworkDraw:
        return draw_batch(batch_key(data, k), self.batch, self.width, sim.problem.dim, dtype)

    def risk(self, w, data, k, sim):
        return chain_risk(w, self.draw(data, k, sim, w.dtype), sim)
