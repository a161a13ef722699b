"""Observables of subspace recovery for multi-index targets (`SaveAt` functions).

With directions `u_i` (rows of `U`) and neurons `w_j`, everything is measured in the Sigma
geometry, where the target's arguments `z_i = <u_i, x> / ||u_i||_Sigma` live:

- `overlap` (k, m): `M_ij = <u_i, w_j>_Sigma / (||u_i||_Sigma ||w_j||_Sigma)`, the correlation
  of neuron j's pre-activation with `z_i`;
- `singular_values` of `M` (min(k, m));
- `principal_cos` (k,): the cosines of the principal angles between `span{u_i}` and
  `span{w_j}` in the Sigma geometry (singular values of `M G_W^{-1/2}`, `G_W` the rows'
  Sigma-correlation matrix), padded with zeros to k when fewer neurons than directions
  (or dependent ones) leave part of `span{u_i}` uncovered; all 1 exactly when the neurons'
  span contains the target's subspace;
- `best` (k,): each direction's best overlap `max_j |M_ij|` (one neuron along `u_i`);
- `coverage` (k,): the Sigma norm of the projection of each unit `u_i` onto `span{w_j}`
  (the neurons together carry `u_i`: with m > k neurons a direction is often learned
  spread over several of them, mixed with others, so `best` stays well below 1 while
  `coverage` reaches 1; at a uniform start it is about `sqrt(m / d)`).

`subspace_metrics` records these (with the risk); `direction_overlaps` is the passage
function: `u1`, ..., `uk` (each direction's best overlap), `cover1`, ..., `coverk` and
`subspace` (the smallest principal cosine), so `SaveAt(passages={"cover1": (0.9,), ...},
passage_fn=direction_overlaps)` gives each direction's learning time. Both take the single neuron's
`w` (d,) or a network run's `TwoLayer`, in the run's coordinates (reduced ones included).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._network import TwoLayer


def _rows(w):
    return w.w if isinstance(w, TwoLayer) else jnp.atleast_2d(w)


def overlap_matrix_sigma(rows, problem):
    """`M` (k, m): Sigma-correlations of the target's directions with the rows (m, d)."""
    cov, U = problem.covariance, problem.target.directions()
    su = cov.apply(U)
    return (su @ rows.T) / (cov.norm(U)[:, None] * cov.norm(rows)[None, :])


def _whitened(rows, problem, eps: float = 1e-10):
    """`M G^{-1/2}` (k, m), `G` the rows' Sigma-correlation matrix (eigenvalues below `eps`
    times the largest dropped): the directions' coordinates in a Sigma-orthonormal basis of
    the rows' span."""
    cov = problem.covariance
    m = overlap_matrix_sigma(rows, problem)
    sr = cov.apply(rows)
    nr = cov.norm(rows)
    corr = (sr @ rows.T) / (nr[:, None] * nr[None, :])
    evals, evecs = jnp.linalg.eigh(corr)
    keep = evals > eps * jnp.max(evals)
    inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, evals, 1.0)), 0.0)
    return (m @ evecs) * inv_sqrt


def principal_cosines(rows, problem, eps: float = 1e-10):
    """The k cosines of the principal angles between `span U` and `span rows` in the Sigma
    geometry, zeros for the part of `span U` no row reaches (a row dependent on the others is
    dropped: eigenvalues of the rows' correlation matrix below `eps` times the largest count as 0)."""
    # U is Sigma-orthogonal with unit-normalised rows, so M G^{-1/2} has the cosines as singular values
    cos = jnp.linalg.svd(_whitened(rows, problem, eps), compute_uv=False)
    k = problem.target.directions().shape[0]
    return jnp.pad(cos, (0, k - cos.shape[0])) if cos.shape[0] < k else cos


def coverage(rows, problem, eps: float = 1e-10):
    """Each direction's coverage (k,): the Sigma norm of the Sigma-projection of the unit
    `u_i` onto `span rows`, in [0, 1]; 1 once the neurons' span contains `u_i`."""
    return jnp.sqrt(jnp.sum(_whitened(rows, problem, eps) ** 2, axis=1))


def _risks(w, sim):
    p = sim.problem
    nan = jnp.full((), jnp.nan, _rows(w).dtype)
    if isinstance(w, TwoLayer):
        from ._committee import network_risk

        risk = network_risk(w.w, w.a, w.b, p, sim.neuron_cov) if p.inputs.is_gaussian else nan
        flat = sim.dynamic.layout.flatten(w.w, w.a, w.b)
        return risk, sim.source.train_risk(flat, sim.data, sim)
    from ._population import population_risk

    risk = population_risk(w, p, sim.neuron_cov) if p.inputs.is_gaussian else nan
    return risk, sim.source.train_risk(w, sim.data, sim)


def subspace_metrics(w, sim) -> dict:
    """`overlap` (k, m), `singular_values`, `principal_cos`, `best` (k,), `risk` (closed
    form, Gaussian inputs) and `train_risk` of a single neuron `w` or a network."""
    rows = _rows(w)
    m = overlap_matrix_sigma(rows, sim.problem)
    risk, train = _risks(w, sim)
    return {
        "overlap": m,
        "singular_values": jnp.linalg.svd(m, compute_uv=False),
        "principal_cos": principal_cosines(rows, sim.problem),
        "best": jnp.max(jnp.abs(m), axis=1),
        "coverage": coverage(rows, sim.problem),
        "risk": risk,
        "train_risk": train,
    }


def direction_overlaps(w, sim) -> dict:
    """First passages per direction: `u1`..`uk` (best overlap of each direction),
    `cover1`..`coverk` (coverage of each direction) and `subspace` (the smallest principal
    cosine)."""
    rows = _rows(w)
    best = jnp.max(jnp.abs(overlap_matrix_sigma(rows, sim.problem)), axis=1)
    cover = coverage(rows, sim.problem)
    out = {f"u{i + 1}": best[i] for i in range(best.shape[0])}
    out.update({f"cover{i + 1}": cover[i] for i in range(cover.shape[0])})
    out["subspace"] = jnp.min(principal_cosines(rows, sim.problem))
    return out
