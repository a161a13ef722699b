"""End to end: phase 1 (width-m first layer on `n` samples), phase 2 (ridge readout on `n2`
fresh samples), and optionally the kernel baselines on the union of those `n + n2` samples.

The `m` neurons are trained independently (SPEC section 3) from independent `w_i(0)` but on
the same `n` labelled samples: one `prepare` draws the data, and `init`/`advance` are vmapped
over the initialisations. Validation and test samples are shared by every method.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._kernels import KERNELS, kernel_ridge, rf_ridge
from ._problem import check, check_int
from ._readout import DEFAULT_RIDGES, Readout, check_ridges, check_sizes, phase2
from ._simulate import Trajectory, advance, init, prepare, result

BASELINES = KERNELS + ("rf",)


class Learned(eqx.Module):
    """What `learn` returns.

    **Fields:**
    - `network`: the trained network's phase-2 `Readout` (test error, ridge, `a`, `b`).
    - `kernels`: baseline name -> `Readout`, each fitted on the same `n + n2` labelled samples
      and scored on the same validation and test samples as the network.
    - `trajectory`: phase-1 `Trajectory` of each neuron (leading axis `m`); `trajectory.w` is W.
    - `n`, `n2`, `n_total = n + n2`: labelled samples used by phase 1, phase 2, and both
      (validation and test samples come on top, the same for every method).
    """

    network: Readout
    kernels: dict
    trajectory: Trajectory
    n: int = eqx.field(static=True)
    n2: int = eqx.field(static=True)

    @property
    def n_total(self) -> int:
        return self.n + self.n2

    @property
    def noise_floor(self) -> Array:
        return self.network.noise_floor


def train_first_layer(problem, dynamic="normalized", *, key, m: int, n: int, **kwargs):
    """Phase 1: `m` neurons trained independently on the same `n` empirical samples.

    Each `w_i(0)` is uniform on the sphere, rescaled by the dynamic's retraction to the
    length `prepare` gives its own `w(0)` (unit Euclidean, or unit in the preconditioner's
    norm for `preconditioned`). `kwargs` go to `prepare` (`dt`, `steps`, `n_unlabelled`, ...).

    **Returns:** `(simulation, trajectory)`, the trajectory with a leading axis `m`.
    """
    check_int("m", m, 1)
    k_sim, k_init = jax.random.split(key)
    sim, w0 = prepare(problem, dynamic, "empirical", key=k_sim, n=n, **kwargs)
    w0s = jax.random.normal(k_init, (m, problem.d), w0.dtype)
    w0s = jax.vmap(lambda v: sim.dynamic.retract(v, w0, sim.precond_cov))(w0s)
    run = lambda v: result(sim, advance(sim, init(sim, v), sim.steps))
    return sim, jax.vmap(run)(w0s)


def learn(
    problem,
    dynamic="normalized",
    *,
    key,
    m: int,
    n: int,
    n2: int,
    n_val: int,
    n_test: int,
    ridges=DEFAULT_RIDGES,
    bias=2.0,
    kernels=(),
    rf_features: int = 1024,
    **phase1,
) -> Learned:
    """Phase 1 then phase 2, and the kernel baselines on exactly the same samples.

    **Arguments:**
    - `problem`, `dynamic`, `key`: as for `simulate`.
    - `m`: width; `n`: phase-1 samples; `n2`: phase-2 samples; `n_val`, `n_test`: validation
      and test samples shared by all methods.
    - `ridges`, `bias`: as for `fit_readout` (the readout uses the dynamic's neuron).
    - `kernels`: any of `"arccos"`, `"rbf"` (exact kernel ridge, float64) and `"rf"`
      (`rf_features` ReLU random features), trained on the `n + n2` samples of both phases.
    - `phase1`: passed to `prepare` (`dt`, `steps`, `n_unlabelled`, `neuron`, `record`, ...).

    **Returns:** a `Learned`. Jittable and vmappable over `key` and the problem's arrays.
    """
    check_sizes(n2=n2, n_val=n_val, n_test=n_test)
    check_ridges(ridges)
    kernels = tuple(kernels)
    bad = [k for k in kernels if k not in BASELINES]
    check("kernels", kernels, not bad, f"allowed: any of {', '.join(map(repr, BASELINES))}")
    k1, k2, k_rf = jax.random.split(key, 3)
    sim, traj = train_first_layer(problem, dynamic, key=k1, m=m, n=n, **phase1)
    network, (train, val, test) = phase2(k2, problem, traj.w, n2, n_val, n_test, ridges, sim.neuron, sim.sigma_hat, bias)
    z1, y1 = sim.data[0], sim.data[1]
    both = (jnp.concatenate([problem.spike.sqrt(z1), train[0]]), jnp.concatenate([y1, train[1]]))
    fits = {}
    for name in kernels:
        if name == "rf":
            fits[name] = rf_ridge(k_rf, both, val, test, features=rf_features, ridges=ridges)
        else:
            fits[name] = kernel_ridge(both, val, test, kernel=name, ridges=ridges)
    return Learned(network=network, kernels=fits, trajectory=traj, n=n, n2=n2)
