"""A multi-index problem in one call: k target directions under p spikes, each spike aligned
with a chosen target direction (or with none) and parametrised by `(r1, r2)` as in the paper.

Directions: `e_1..e_k` (the target's) and `v_1..v_p` (one per spike) are orthonormal (QR of
a Gaussian (d, k + p) draw). Spike `l` aligned with direction `a` is
`theta_l = c e_a + sqrt(1 - c^2) v_l`, `c = <e_a, theta_l> = d^(-r1)`; a spike aligned with
none is `theta_l = v_l` (orthogonal to the target's subspace). Its strength is
`kappa_l = d^(r2)` (or a given `kappa`). The covariance is `scale (I + sum_l kappa_l theta_l
theta_l^T)`, `scale = 1 / (1 + max_l kappa_l)` (`"unit_top"`) or 1 (`"unnormalised"`).

Because each direction takes at most one spike, the `e_i` are Sigma-orthogonal already:
`<e_i, e_j>_Sigma = scale (delta_ij + sum_l kappa_l <e_i, theta_l><e_j, theta_l>)` has no
off-diagonal term, and the target's rows are the `e_i` divided by their Sigma norms
(`U Sigma U^T = I_k`; `u_i` points along `e_i`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ._covariance import NORMALISATIONS, MultiSpikeCovariance
from ._inputs import AbstractInputs, Gaussian
from ._multi_index import MultiIndex
from ._loss import AbstractLoss
from ._problem import Problem, as_function, check, check_choice, check_int, check_real
from ._registry import as_loss


def _spike(spec, i: int, k: int) -> tuple:
    """`(align, r1, r2, kappa)` of one spike given as a mapping or a tuple `(align, r1, r2)`."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"align", "r1", "r2", "kappa"}
        check(f"spikes[{i}]", spec, not unknown, f"unknown keys {sorted(unknown)}; allowed: align, r1, r2, kappa")
        align, r1, r2, kappa = spec.get("align"), spec.get("r1"), spec.get("r2"), spec.get("kappa")
    else:
        ok = isinstance(spec, (tuple, list)) and len(spec) == 3
        check(f"spikes[{i}]", spec, ok, "give a mapping {align, r1, r2 or kappa} or a tuple (align, r1, r2)")
        (align, r1, r2), kappa = spec, None
    check(f"spikes[{i}].align", align, align is None or (isinstance(align, int) and not isinstance(align, bool)
                                                         and 0 <= align < k),
          f"allowed: None (orthogonal to the target) or a direction index in [0, {k - 1}]")
    check(f"spikes[{i}]", spec, (r2 is None) != (kappa is None), "give exactly one of r2 and kappa (kappa = d**r2)")
    if r2 is not None:
        check_real(f"spikes[{i}].r2", r2)
    else:
        check_real(f"spikes[{i}].kappa", kappa, lo=0.0)
    if align is None:
        check(f"spikes[{i}].r1", r1, r1 is None, "a spike aligned with no direction takes no r1")
    else:
        r1 = 0.0 if r1 is None else r1
        check_real(f"spikes[{i}].r1", r1, 0.0, 0.5)
    return align, r1, r2, kappa


def multi_index_problem(
    d: int,
    *,
    key,
    g,
    k: int | None = None,
    spikes=(),
    activation="relu",
    loss: str | AbstractLoss = "squared",
    noise=0.0,
    normalisation: str = "unit_top",
    inputs: AbstractInputs | None = None,
    degree: int = 6,
) -> Problem:
    """A `Problem` with a `MultiIndex` target and a `MultiSpikeCovariance`.

    **Arguments:**
    - `d`: dimension; `key`: PRNG key for the directions.
    - `g`: the link (see `MultiIndex`: a mapping, a built-in name, a callable); `k` its number
      of directions (read from a mapping's multi-indices when not given).
    - `spikes`: one entry per spike, `{"align": i or None, "r1": ..., "r2": ...}` (or
      `"kappa"` for `r2`) or a tuple `(align, r1, r2)`; at most one spike per direction.
    - `activation`, `loss`, `noise`, `normalisation`, `inputs`: as in `make_problem`.
    - `degree`: quadrature degree of a callable `g`.
    """
    check_int("d", d, 2)
    if k is None:
        check("k", k, isinstance(g, Mapping) and len(g) > 0, "give k, the number of directions, with this g")
        k = len(next(iter(g)))
    check_int("k", k, 1)
    specs = [_spike(s, i, k) for i, s in enumerate(spikes)]
    aligned = [s[0] for s in specs if s[0] is not None]
    check("spikes", spikes, len(aligned) == len(set(aligned)), "each target direction takes at most one spike")
    p = len(specs)
    check("d", d, d >= k + p, f"allowed: d >= k + p = {k + p} (k target directions and one direction per spike)")
    loss = as_loss(loss)
    check_choice("normalisation", normalisation, NORMALISATIONS)
    check_real("noise", noise, lo=0.0)
    inputs = Gaussian() if inputs is None else inputs
    check("inputs", inputs, isinstance(inputs, AbstractInputs), "give sj.Gaussian(), sj.StudentT(nu) or sj.Rademacher()")
    q, _ = jnp.linalg.qr(jax.random.normal(key, (d, k + p)))
    e, v = q.T[:k], q.T[k:]
    thetas, kappas = [], []
    for (align, r1, r2, kappa), vl in zip(specs, v):
        if align is None:
            thetas.append(vl)
        else:
            c = jnp.asarray(d, e.dtype) ** (-jnp.asarray(r1, e.dtype))
            thetas.append(c * e[align] + jnp.sqrt(jnp.maximum(1 - c**2, 0.0)) * vl)
        kappas.append(jnp.asarray(d, e.dtype) ** jnp.asarray(r2, e.dtype) if kappa is None
                      else jnp.asarray(kappa, e.dtype))
    thetas = jnp.stack(thetas) if p else jnp.zeros((0, d), e.dtype)
    kappas = jnp.stack(kappas) if p else jnp.zeros((0,), e.dtype)
    top = jnp.max(kappas) if p else jnp.zeros((), e.dtype)
    scale = 1 / (1 + top) if normalisation == "unit_top" else jnp.ones((), e.dtype)
    cov = MultiSpikeCovariance(thetas=thetas, kappas=kappas, scale=scale)
    target = MultiIndex(e / cov.norm(e)[:, None], g, degree=degree)
    return Problem(covariance=cov, target=target, activation=as_function("activation", activation),
                   noise=jnp.asarray(noise, e.dtype), inputs=inputs, loss=loss)


def spike_alignment(problem) -> np.ndarray:
    """`<theta_l, u_i> / ||u_i||` (p, k): each spike's Euclidean alignment with each direction."""
    U = problem.target.directions()
    return np.asarray(problem.covariance.thetas @ (U / jnp.linalg.norm(U, axis=1, keepdims=True)).T)
