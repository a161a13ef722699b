"""Final overlaps of many seeds in one compiled call, shared by the claims 1-2 experiments: the
population flow (3-coordinate form, Dopri5) and full-batch GD on `n` samples (Euler); and the
population flow's first passages from each seed's own start with the largest stable Euler step
along the way (`population_passages`, for the step-share law of the one-pass grid)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spikejax import DYNAMICS, Dopri5, Empirical, Euler, SaveAt, make_problem, simulate


def median_abs(x) -> float:
    """The median of `|x|`."""
    return float(np.median(np.abs(np.asarray(x, float))))


@functools.lru_cache(maxsize=16)
def _population_runner(dyn, rtol, steps=400):
    """One jitted (seeds,) runner per dynamic and tolerance: the problem and `dt = T / steps` are
    arguments (Dopri5 is adaptive, `dt` only sets the horizon and the first step), so a new `T` or
    `kappa` does not recompile."""

    def one(p, key, dt):
        tr = simulate(p, DYNAMICS[dyn](), key=key, solver=Dopri5(rtol=rtol, atol=rtol * 1e-3), dt=dt, steps=steps,
                      reduced=True, saveat=SaveAt(steps=3))
        return jnp.abs(tr.cos_u[-1]), jnp.abs(tr.rho[-1]), tr.status

    return jax.jit(jax.vmap(one, (None, 0, None)))


def population_finals(d, kappa, dyn, keys, T, rtol, link, activation):
    """Final `|cos_u|`, `|rho|` and status of each seed: the 3-coordinate flow by Dopri5 to `T`, `r1 = 0`."""
    p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=0.0, link=link, activation=activation)
    return [np.asarray(a) for a in _population_runner(dyn, rtol)(p, keys, jnp.asarray(T / 400))]


def empirical_finals(d, kappa, dyn, keys, n, dt, steps, link, activation, noise, inputs=None):
    """Final `|cos_u|`, `|rho|` and status of each seed: full-batch GD (Euler, step `dt`) on `n` samples, `r1 = 0`."""
    p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=0.0, link=link, activation=activation, noise=noise,
                     inputs=inputs)

    def one(key):
        tr = simulate(p, DYNAMICS[dyn](), Empirical(n), key=key, solver=Euler(), dt=dt, steps=steps,
                      saveat=SaveAt(steps=3))
        return jnp.abs(tr.cos_u[-1]), jnp.abs(tr.rho[-1]), tr.status

    return [np.asarray(a) for a in jax.jit(jax.vmap(one))(keys)]


# ---------------------------------------------------------------- first passages of the population flow

PASSAGE_STEPS = 2**20  # the flow's horizon in units of dt = T / PASSAGE_STEPS (Dopri5: dt only places the records)
PASSAGE_RECORDS = 1024  # log-spaced records: successive times 1.4% apart, the crossing interpolated between two


def _overlaps_and_state(w, sim):
    """What a passage flow records: `|rho|`, `|cos_u|` and the reduced state itself (for the field's Jacobian)."""
    from spikejax.internal import passage_overlaps as overlaps  # the passage observables of `sj.passage_n` (not `sj.overlaps`)

    return dict(overlaps(w, sim), w=w)


def _curvature(sim, w):
    """The largest `|eigenvalue|` of the field's Jacobian at `w` (3 x 3 in reduced coordinates, exact)."""
    jac = jax.jacfwd(lambda v: sim.field(v, jnp.zeros((), jnp.int32)))(w)
    return jnp.max(jnp.abs(jnp.linalg.eigvals(jac)))


@functools.lru_cache(maxsize=16)
def _passage_runner(dyn, rtol):
    """One jitted (seeds,) runner per dynamic: each seed's flow (3 coordinates, Dopri5) from its own
    `w(0)` (the key's, as a one-pass run draws it), recorded at log-spaced times: `|rho|`, `|cos_u|`,
    the Jacobian's largest `|eigenvalue|` at each record, and the run's status."""
    from spikejax import Population, prepare

    saveat = SaveAt(steps=PASSAGE_RECORDS, fn=_overlaps_and_state)

    def one(p, key, dt):
        tr = simulate(p, DYNAMICS[dyn](), Population(), key=key, solver=Dopri5(rtol=rtol, atol=rtol * 1e-3), dt=dt,
                      steps=PASSAGE_STEPS, reduced=True, saveat=saveat)
        sim, _ = prepare(p, DYNAMICS[dyn](), Population(), key=key, reduced=True)
        lam = jax.vmap(lambda w: _curvature(sim, w))(tr.ys["w"])
        return tr.ys["rho"], tr.ys["cos_u"], lam, tr.status

    return jax.jit(jax.vmap(one, (None, 0, None)))


def crossing(ts, values, threshold) -> float:
    """The first time `values` reaches `threshold`, linear between the two records around it
    (0 if the start is past it; NaN if never)."""
    ts, values = np.asarray(ts, float), np.asarray(values, float)
    above = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) >= threshold)
    if above.size == 0:
        return float("nan")
    j = int(above[0])
    if j == 0:
        return 0.0
    v0, v1 = values[j - 1], values[j]
    return float(ts[j - 1] + (ts[j] - ts[j - 1]) * (threshold - v0) / (v1 - v0))


def population_passages(problem, dyn, keys, horizon, threshold, metric="rho", rtol=1e-6) -> dict:
    """Each seed's population flow (`dyn`, the problem's link, activation, loss, spike and
    normalisation; reduced coordinates, Dopri5 to `rtol`) from the start its key draws, up to time
    `horizon`: `time` (S,) the first time `|metric| >= threshold` (`rho` or `cos_u`; NaN past the
    horizon), `rho0`, and
    `limit` (S,) the largest stable Euler step along the way, `2 / max |eigenvalue|` of the field's
    Jacobian over the records up to the passage (the whole horizon for a seed that never passed)."""
    rho, cos, lam, status = (np.asarray(a, float) for a in _passage_runner(dyn, rtol)(
        problem, jnp.asarray(keys), jnp.asarray(horizon / PASSAGE_STEPS)))
    ts = SaveAt(steps=PASSAGE_RECORDS).schedule(PASSAGE_STEPS) * (horizon / PASSAGE_STEPS)
    times = np.array([crossing(ts, r, threshold) for r in (rho if metric == "rho" else cos)])
    upto = [ts <= (t if np.isfinite(t) else np.inf) for t in times]
    limit = np.array([2.0 / np.max(np.where(m, lm, 0.0)) for m, lm in zip(upto, lam)])
    return dict(time=times, rho0=rho[:, 0], limit=limit, status=status.astype(int))
