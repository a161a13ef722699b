"""What a run records, and how it ended.

`SaveAt(steps=..., fn=...)` declares the observables once: `fn(w, sim)` returns a pytree
(a dict of scalars by default), evaluated at the recorded times on the d-dimensional form
and on the reduced form alike (the covariance, target and `w` are all expressed in the
same coordinates there). `Trajectory.ys` holds that pytree with a leading time axis, and
sweeps name their dataset variables after its keys.

`STATUS` is the enumeration of how a run ended; `STATUS_MESSAGES` says what each means.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._covariance import dot
from ._network import TwoLayer
from ._population import population_risk, rho

STATUS = ("ok", "nonfinite", "diverged", "oscillating", "max_steps", "error")
STATUS_MESSAGES = {
    "ok": "finished",
    "nonfinite": "w became NaN or infinite; the run reports its last good iterate, later records are NaN",
    "diverged": "||w|| exceeded max_norm; the run reports its last good iterate, later records are NaN",
    "oscillating": "the last steps alternate by more than 0.1% of ||w|| (a period-2 orbit of the "
    "discrete map, or one in transit): the step is above the map's stability limit there; a smaller "
    "dt, or for a population source the Dopri5 flow, removes it",
    "max_steps": "the adaptive solver used max_steps attempts before reaching the horizon",
    "error": "(sweeps only) the configuration's group could not run; the dataset's errors attribute says why",
}
OK, NONFINITE, DIVERGED, OSCILLATING, MAX_STEPS, ERROR = range(len(STATUS))

METRICS = ("cos_u", "rho", "cos_theta", "norm", "risk", "train_risk")
# name -> (long name, description): the one table that sweeps' datasets and docs/sweeps.md read
METRIC_DOCS = {
    "cos_u": ("cosine to the target direction",
              "<w, u> / (||w|| ||u||): the Euclidean angle between the neuron and the target direction u"),
    "rho": ("overlap with the target in the Sigma geometry",
            "<w, u>_Sigma / (||w||_Sigma ||u||_Sigma): the correlation of the neuron's pre-activation "
            "<w, x> with the target's index <u, x>; it decides prediction"),
    "cos_theta": ("cosine to the spike direction",
                  "<w, theta> / (||w|| ||theta||): the Euclidean angle between the neuron and the spike theta"),
    "norm": ("weight norm", "||w||, the Euclidean norm of the first-layer weights"),
    "risk": ("population risk",
             "the expected loss of the neuron (a = 1, b = 0) on fresh data, in closed form"),
    "train_risk": ("training risk",
                   "the mean loss on the n training samples (source='empirical'); NaN for other sources"),
}


def _single(problem) -> bool:
    """Whether the target has one direction `u` (the default observables read it)."""
    return problem.target.index_direction() is not None


def _one_direction(w, problem) -> dict:
    """`cos_u` and `rho` for the direction `u_1` of a k = 1 multi-index target: signed for one
    neuron `w` (d,), as for a single-index target; for a network's `TwoLayer`, the best
    neuron's `|cos_u_j|` and `|rho_j|`, as `network_metrics` records them."""
    u, cov = problem.target.directions()[0], problem.covariance
    rows = w.w if isinstance(w, TwoLayer) else w
    cos = dot(rows, u) / jnp.sqrt(dot(rows, rows) * dot(u, u))
    r = cov.inner(rows, u) / (cov.norm(rows) * cov.norm(u))
    if isinstance(w, TwoLayer):
        return {"cos_u": jnp.max(jnp.abs(cos)), "rho": jnp.max(jnp.abs(r))}
    return {"cos_u": cos, "rho": r}


def metrics(w, sim) -> dict:
    """The default observables (`METRICS`) of `w`; for a k-index target, `subspace_metrics`
    (with `cos_u` and `rho` of its one direction when k = 1)."""
    p = sim.problem
    if not _single(p):
        from ._subspace import subspace_metrics

        out = subspace_metrics(w, sim)
        return out | _one_direction(w, p) if p.target.directions().shape[0] == 1 else out
    nw = jnp.sqrt(dot(w, w))
    cov = sim.neuron_cov
    theta = p.covariance.spike()
    risk = population_risk(w, p, cov) if p.inputs.is_gaussian else jnp.full_like(nw, jnp.nan)
    return {
        "cos_u": dot(w, p.u) / nw,
        "rho": rho(w, p),
        "cos_theta": dot(w, theta) / nw if theta is not None else jnp.full_like(nw, jnp.nan),
        "norm": nw,
        "risk": risk,
        "train_risk": sim.source.train_risk(w, sim.data, sim),
    }


def overlaps(w, sim) -> dict:
    """The cheap observables first passages are taken on: `|rho|` and `|cos_u|` (O(d) a step);
    for a k-index target, each direction's (`direction_overlaps`, and `|rho|`, `|cos_u|` when k = 1)."""
    p = sim.problem
    if not _single(p):
        from ._subspace import direction_overlaps

        out = direction_overlaps(w, sim)
        if p.target.directions().shape[0] == 1:
            out |= {name: jnp.abs(v) for name, v in _one_direction(w, p).items()}
        return out
    return {"rho": jnp.abs(rho(w, p)), "cos_u": jnp.abs(dot(w, p.u)) / jnp.sqrt(dot(w, w))}


def _as_passages(passages):
    if passages is None:
        return ()
    if isinstance(passages, dict):
        passages = passages.items()
    try:
        return tuple((str(k), tuple(float(t) for t in v)) for k, v in passages)
    except (TypeError, ValueError):
        return passages


def record_schedule(steps: int, record: int) -> np.ndarray:
    """At most `record` log-spaced steps in `[0, steps]`, always with 0 and `steps`."""
    if record >= steps + 1:
        return np.arange(steps + 1)
    if record == 2:
        return np.array([0, steps])
    pts = np.unique(np.round(np.logspace(0, np.log10(steps), record - 1)).astype(int))
    return np.concatenate([[0], pts])


def _as_steps(steps):
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
        return int(steps)
    try:
        return tuple(int(k) for k in np.asarray(steps).ravel())
    except (TypeError, ValueError):
        return steps


class SaveAt(eqx.Module):
    """When to record and what.

    **Fields:**
    - `steps`: a count of log-spaced points in `[0, steps]` (0 and the last always), or an
      explicit increasing sequence of step indices starting at 0 and ending at `steps`.
      A step index `k` is the time `t = k dt` (an adaptive solver records at those times).
    - `fn`: `fn(w, sim) -> pytree` of scalars; default `metrics`.
    - `passages`: first passages tracked at every step inside the scan (no history), e.g.
      `{"rho": (0.5, 0.9, 0.99), "cos_u": (0.9,)}`: the first time `t` at which
      `passage_fn(w)[name] >= threshold`; NaN if never. For a one-pass source the samples
      used by then are `batch * t / dt`.
    - `passage_fn`: `fn(w, sim) -> dict` of the tracked values; default `overlaps`
      (`|rho|`, `|cos_u|`).
    - `held`: also track, per threshold, the time the current stay above it began (NaN while
      below). At the end of a run that is the passage that held to the end: a noisy run can
      cross a threshold in an excursion and fall back, and its first passage then measures the
      noise, not learning. Unpacked as `{name}_held`; `{name}_above` counts the updates (steps)
      at or above the threshold from the first passage on (a fraction of the time that held).
    """

    steps: int | tuple = eqx.field(static=True, default=32, converter=_as_steps)
    fn: Callable = eqx.field(static=True, default=metrics)
    passages: tuple = eqx.field(static=True, default=(), converter=_as_passages)
    passage_fn: Callable = eqx.field(static=True, default=overlaps)
    held: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if isinstance(self.steps, (int, np.integer)) and not isinstance(self.steps, bool):
            if self.steps < 2:
                raise ValueError(f"saveat.steps={self.steps!r} is not allowed; allowed: a count >= 2 or a sequence")
        elif not isinstance(self.steps, tuple):
            raise ValueError(f"saveat.steps={self.steps!r} is not allowed; allowed: a count >= 2 or a tuple of steps")
        if not isinstance(self.held, bool):
            raise ValueError(f"saveat.held={self.held!r} is not allowed; allowed: True or False")
        ok = isinstance(self.passages, tuple) and all(
            len(th) >= 1 and all(0 < t <= 1 for t in th) for _, th in self.passages)
        if not ok:
            raise ValueError(
                f"saveat.passages={self.passages!r} is not allowed; allowed: a mapping from an observable "
                "name to thresholds in (0, 1]"
            )

    def thresholds(self):
        """`(names, thresholds)`: one entry per tracked (observable, threshold) pair."""
        names = [k for k, th in self.passages for _ in th]
        return names, np.array([t for _, th in self.passages for t in th])

    def initial(self, dtype):
        """The tracked values before any update: P first passages (NaN: not yet); with `held`,
        also P starts of the current stay (NaN) and P counts of the updates at or above the
        threshold since the first passage (0)."""
        P = len(self.thresholds()[0])
        nan = jnp.full((P * (2 if self.held else 1),), jnp.nan, dtype)
        return jnp.concatenate([nan, jnp.zeros((P,), dtype)]) if self.held else nan

    def passage(self, w, sim, t, times):
        """Update the tracked values `times` (as `initial`) with the state `w` at time `t`: the first
        passages, then (with `held`) the start of the current stay above each threshold and the
        count of updates (steps, for a fixed-step solver) at or above it from the first passage on."""
        if not self.passages:
            return times
        values = self.passage_fn(w, sim)
        names, th = self.thresholds()
        P = len(names)
        v = jnp.stack([values[k] for k in names])
        above = v >= jnp.asarray(th, v.dtype)
        first = jnp.where(jnp.isnan(times[:P]) & above, t, times[:P])
        if not self.held:
            return first
        stay, count = times[P:2 * P], times[2 * P:]
        stay = jnp.where(above, jnp.where(jnp.isnan(stay), t, stay), jnp.nan)
        return jnp.concatenate([first, stay, count + above.astype(count.dtype)])

    def unpack(self, times) -> dict:
        """`{name: (thresholds,) first-passage times}` from the flat array; with `held` also
        `{name}_held` (the start of the stay above each threshold that lasted to the end, NaN if
        below at the end) and `{name}_above` (the updates at or above it from the first passage on)."""
        out, i = {}, 0
        P = len(self.thresholds()[0])
        for k, th in self.passages:
            out[k] = times[..., i:i + len(th)]
            if self.held:
                out[f"{k}_held"] = times[..., P + i:P + i + len(th)]
                out[f"{k}_above"] = times[..., 2 * P + i:2 * P + i + len(th)]
            i += len(th)
        return out

    def schedule(self, steps: int) -> np.ndarray:
        """The recorded step indices for a run of `steps` steps."""
        if not isinstance(self.steps, tuple):
            return record_schedule(steps, int(self.steps))
        s = np.asarray(self.steps, int)
        ok = s.ndim == 1 and s.size >= 2 and s[0] == 0 and s[-1] == steps and np.all(np.diff(s) > 0)
        if not ok:
            raise ValueError(
                f"saveat.steps={self.steps!r} is not allowed; allowed: increasing step indices "
                f"from 0 to steps={steps}"
            )
        return s
