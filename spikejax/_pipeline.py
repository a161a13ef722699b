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
from ._population import rho
from ._problem import check, check_int, check_real
from ._readout import DEFAULT_RIDGES, Readout, check_ridges, check_sizes, draw_splits, phase2
from ._data import prefix_mask
from ._dynamics import Normalized
from ._sources import Empirical
from ._simulate import Trajectory, advance, init, prepare, result

BASELINES = KERNELS + ("rf",)


class Learned(eqx.Module):
    """What `learn` returns.

    **Fields:**
    - `network`: the trained network's phase-2 `Readout` (test error, ridge, `a`, `b`, and
      `index` into `stops`: the phase-1 stopping time validation chose).
    - `kernels`: baseline name -> `Readout`, each fitted on the same `n + n2` labelled samples
      and scored on the same validation and test samples as the network.
    - `trajectory`: phase-1 `Trajectory` of each neuron (leading axis `m`); `trajectory.w` is W.
    - `n`, `n2`, `n_total = n + n2`: labelled samples used by phase 1, phase 2, and both
      (validation and test samples come on top, the same for every method).
    - `stops`: the phase-1 steps at which a readout was fitted; `rho_stops` (S, m) each
      neuron's `rho` at those steps.
    """

    network: Readout
    kernels: dict
    trajectory: Trajectory
    rho_stops: Array
    n: int = eqx.field(static=True)
    n2: int = eqx.field(static=True)
    stops: tuple = eqx.field(static=True)

    @property
    def stop(self) -> Array:
        """The phase-1 step whose first layer validation chose."""
        return jnp.asarray(self.stops)[self.network.index]

    @property
    def n_total(self) -> int:
        return self.n + self.n2

    @property
    def noise_floor(self) -> Array:
        return self.network.noise_floor


def train_first_layer(problem, dynamic, *, key, m: int, n: int, n_used=None, stops=None, **kwargs):
    """Phase 1: `m` neurons trained independently on the same `n` empirical samples.

    Each `w_i(0)` is uniform on the sphere, rescaled by the dynamic's retraction to the
    length `prepare` gives its own `w(0)` (unit Euclidean, or unit in the preconditioner's
    norm for `Preconditioned`). `n_used` as for `Empirical`; `kwargs` go to `prepare`
    (`dt`, `steps`, `n_unlabelled`, `solver`, ...).
    `stops`: increasing steps in `[0, steps]` at which to keep the weights (default: the last).

    **Returns:** `(simulation, trajectory, ws)`: the trajectory with a leading axis `m`, and
    the weights at the stops, shape (S, m, d).
    """
    check_int("m", m, 1)
    k_sim, k_init = jax.random.split(key)
    sim, w0 = prepare(problem, dynamic, Empirical(n, n_used), key=k_sim, **kwargs)
    stops = check_stops(stops, sim.steps)
    w0s = jax.random.normal(k_init, (m, problem.d), w0.dtype)
    w0s = jax.vmap(lambda v: sim.dynamic.retract(v, w0, sim))(w0s)
    at = jnp.asarray(stops)

    def run(v):
        def body(carry, _):  # one step at a time, keeping w at the stops (S x d, no history)
            state, ws = carry
            state = advance(sim, state, 1)
            return (state, jnp.where((state.k == at)[:, None], state.w, ws)), None

        state = init(sim, v)
        ws = jnp.where((at == 0)[:, None], v, jnp.zeros((len(stops), v.shape[0]), v.dtype))
        (state, ws), _ = jax.lax.scan(body, (state, ws), None, length=sim.steps)
        return result(sim, state), ws

    traj, ws = jax.vmap(run)(w0s)
    return sim, traj, jnp.swapaxes(ws, 0, 1)


def check_stops(stops, steps: int) -> tuple:
    """Increasing integer steps in `[0, steps]`; None means `(steps,)`."""
    if stops is None:
        return (steps,)
    stops = tuple(stops)
    ok = (
        len(stops) >= 1
        and all(isinstance(s, int) and not isinstance(s, bool) for s in stops)
        and all(0 <= s <= steps for s in stops)
        and all(a < b for a, b in zip(stops, stops[1:]))
    )
    check("stops", stops, ok, f"allowed: a non-empty increasing sequence of integer steps in [0, steps={steps}]")
    return stops


def learn(
    problem,
    dynamic,
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
    n_used=None,
    n2_used=None,
    stops=None,
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
    - `n_used`, `n2_used`: use only the first `n_used <= n` and `n2_used <= n2` samples (arrays
      are fine: vmap over sample sizes at one padded shape; `n`, `n2` stay the padded sizes).
    - `stops`: phase-1 steps at which a readout is fitted (default: only the last); the one with
      the smallest validation error is reported (early stopping on the shared validation set).
    - `phase1`: passed to `prepare` (`dt`, `steps`, `n_unlabelled`, `neuron`, `saveat`, ...).

    **Returns:** a `Learned`. Jittable and vmappable over `key`, the problem's arrays,
    `n_used` and `n2_used`. `learn_samples` returns the samples it used.
    """
    check_sizes(n2=n2, n_val=n_val, n_test=n_test)
    if n2_used is not None:
        check_real("n2_used", n2_used, lo=1, hi=n2)
    kernels = tuple(kernels)
    bad = [k for k in kernels if k not in BASELINES]
    check("kernels", kernels, not bad, f"allowed: any of {', '.join(map(repr, BASELINES))}")
    check_ridges(ridges, positive=any(k in KERNELS for k in kernels))  # Cholesky needs ridge > 0
    k1, k2, k_rf = jax.random.split(key, 3)
    sim, traj, ws = train_first_layer(problem, dynamic, key=k1, m=m, n=n, stops=stops, n_used=n_used, **phase1)
    network, (train, val, test), _ = phase2(k2, problem, ws, n2, n_val, n_test, ridges, sim.neuron, sim.sigma_hat, bias, n2_used)
    fits = {}
    if kernels:
        both = _union(problem, sim.data, train)
        mask = None
        if n_used is not None or n2_used is not None:
            mask = jnp.concatenate([prefix_mask(n, n_used), prefix_mask(n2, n2_used)])
        for name in kernels:
            if name == "rf":
                fits[name] = rf_ridge(k_rf, both, val, test, features=rf_features, ridges=ridges, mask=mask)
            else:
                fits[name] = kernel_ridge(both, val, test, kernel=name, ridges=ridges, mask=mask)
    return Learned(
        network=network,
        kernels=fits,
        trajectory=traj,
        rho_stops=rho(ws, problem),
        n=n,
        n2=n2,
        stops=check_stops(stops, sim.steps),
    )


def _union(problem, data1, train2):
    """Phase-1 base draws `(z, y, ...)` and phase-2 `(x, y)` as one training set `(x, y)`."""
    z1, y1 = data1[0], data1[1]
    return jnp.concatenate([problem.covariance.sqrt(z1), train2[0]]), jnp.concatenate([y1, train2[1]])


def learn_samples(problem, *, key, n: int, n2: int, n_val: int, n_test: int):
    """The labelled samples `learn(problem, key=key, n=n, n2=n2, ...)` uses, whatever its
    dynamic: `(phase1, phase2, val, test)`, each a pair `(x, y)`; with `n_used`/`n2_used`
    `learn` uses the first rows of `phase1`/`phase2`. For running baselines outside `learn`.
    """
    check_sizes(n=n, n2=n2, n_val=n_val, n_test=n_test)
    # The same key splits as learn -> train_first_layer -> prepare and learn -> phase2;
    # tests/test_readout.py::test_learn_samples_are_the_samples_learn_uses pins them.
    k1, k2, _ = jax.random.split(key, 3)
    sim, _ = prepare(problem, Normalized(), Empirical(n), key=jax.random.split(k1)[0], steps=1)
    (train, val, test) = draw_splits(problem, jax.random.split(k2)[1], n2, n_val, n_test)
    x1 = problem.covariance.sqrt(sim.data[0])
    return (x1, sim.data[1]), train, val, test
