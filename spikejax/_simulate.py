"""The time loop for one configuration: pure `init` / `advance` / `result` around a `lax.scan`.

Overlaps are recorded at log-spaced steps (always step 0 and the last), never whole
weight histories. The step counter and the record pointer are unbatched scan carries, so
under `vmap` the recording stays a real `lax.cond` and costs nothing between records.
Failures are values: a configuration that goes non-finite or diverges is frozen, its
`status` and `fail_step` say what and when, and its later records are NaN.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from ._data import estimate_covariance
from . import _reduced as reduced_form
from ._dynamics import DYNAMICS
from ._network import NEURONS, neuron_covariance
from ._population import population_risk, reduce
from ._problem import Problem, check, check_choice, check_int, check_real
from ._sources import SOURCES, Empirical, Online, Population

STATUS = ("ok", "nonfinite", "diverged")
METRICS = ("cos_u", "rho", "cos_theta", "norm", "risk", "train_risk")


def record_schedule(steps: int, record: int) -> np.ndarray:
    """At most `record` log-spaced steps in `[0, steps]`, always with 0 and `steps`."""
    if record >= steps + 1:
        return np.arange(steps + 1)
    if record == 2:
        return np.array([0, steps])
    pts = np.unique(np.round(np.logspace(0, np.log10(steps), record - 1)).astype(int))
    return np.concatenate([[0], pts])


class Trajectory(eqx.Module):
    """What one run records. Metric arrays have shape (..., R) for the R recorded `steps`.

    `status` indexes `STATUS` (`0` ok, `1` nonfinite, `2` diverged); `fail_step` is -1 when ok.
    """

    steps: Array
    cos_u: Array
    rho: Array
    cos_theta: Array
    norm: Array
    risk: Array
    train_risk: Array
    w: Array
    status: Array
    fail_step: Array


class State(NamedTuple):
    w: Array
    opt_state: Any
    k: Array
    ptr: Array
    records: Array
    status: Array
    fail_step: Array


class Simulation(eqx.Module):
    """Everything one run needs besides its state; built by `prepare`."""

    problem: Problem
    dynamic: eqx.Module
    source: eqx.Module
    data: Any
    sigma_hat: Any
    dt: Array
    basis: Any
    neuron: str = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    schedule: tuple = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)
    max_norm: float = eqx.field(static=True)

    @property
    def neuron_cov(self):
        return neuron_covariance(self.neuron, self.problem.spike, self.sigma_hat)

    @property
    def precond_cov(self):
        return self.problem.spike if self.sigma_hat is None else self.sigma_hat

    def opt(self):
        base = optax.sgd(self.dt) if self.optimizer is None else self.optimizer
        return optax.chain(self.dynamic.transform(self.precond_cov), base)

    def risk(self, w, k):
        return self.source.risk(w, self.data, k, self.problem, self.neuron_cov)

    def measure(self, w):
        """The recorded metrics of `w`, in `METRICS` order."""
        if reduced_form.applies(self):
            return reduced_form.metrics(self, w)
        spike = self.problem.spike
        nw = jnp.linalg.norm(w)
        cov = self.neuron_cov
        return jnp.stack(
            [
                w @ spike.u / nw,
                spike.inner(w, spike.u) / (spike.norm(w) * spike.norm(spike.u)),
                w @ spike.theta / nw,
                nw,
                population_risk(w, self.problem, cov),
                self.source.train_risk(w, self.data, self.problem, cov),
            ]
        )


def prepare(
    problem: Problem,
    dynamic="normalized",
    source="population",
    *,
    key,
    dt=0.05,
    steps: int = 1000,
    n: int | None = None,
    n_used=None,
    batch: int | None = None,
    n_unlabelled: int = 0,
    record: int = 32,
    neuron: str | None = None,
    optimizer=None,
    reduced: bool = False,
    max_norm: float = 1e6,
    init_key=None,
):
    """Check the arguments and build `(simulation, w0)`; see `simulate` for their meaning."""
    check_choice("dynamic", dynamic, tuple(DYNAMICS))
    check_choice("source", source, SOURCES)
    check_real("dt", dt, lo=0.0, lo_open=True)
    check_int("steps", steps, 1)
    check_int("record", record, 2)
    check_int("n_unlabelled", n_unlabelled, 0)
    check_real("max_norm", max_norm, lo=0.0, lo_open=True)
    d = problem.d
    if source == "empirical":
        check_int("n", n, 1)
        if n_used is not None:
            check_real("n_used", n_used, lo=1, hi=n)
    if source == "online":
        check_int("batch", batch, 1)
    if n_unlabelled:
        check(
            "n_unlabelled",
            n_unlabelled,
            n_unlabelled >= d,
            f"SigmaHat must be invertible: give 0 (use the true Sigma) or at least d={d}",
        )
    dyn = DYNAMICS[dynamic]()
    if neuron is None:
        neuron = dyn.default_neuron
        if neuron == "sigma" and n_unlabelled:
            neuron = "sigma_hat"
    check_choice("neuron", neuron, NEURONS)
    check(
        "neuron",
        neuron,
        neuron != "sigma_hat" or n_unlabelled > 0,
        "the sigma_hat neuron needs n_unlabelled > 0 samples to estimate SigmaHat",
    )
    check(
        "reduced",
        reduced,
        not reduced or (source == "population" and not n_unlabelled),
        "the 3-coordinate form exists for source='population' with the true Sigma (n_unlabelled=0)",
    )

    k_init, k_data, k_unl = jax.random.split(key, 3)
    k_init = k_init if init_key is None else init_key
    w0 = jax.random.normal(k_init, (d,), problem.spike.u.dtype)
    w0 = w0 / jnp.linalg.norm(w0)
    basis = None
    if reduced:
        problem, w0, basis = reduce(problem, w0)
    src = {"population": Population(), "empirical": Empirical(n or 0, n_used), "online": Online(batch or 0)}[source]
    sigma_hat = (
        estimate_covariance(problem.spike, k_unl, n_unlabelled, problem.input_dist, problem.nu)
        if n_unlabelled
        else None
    )
    if dynamic == "preconditioned":
        # Same direction, unit length in the preconditioner's norm: the flow's speed is
        # proportional to 1 / ||w||_P^2, so this keeps dt meaning the same at every kappa.
        w0 = w0 / (problem.spike if sigma_hat is None else sigma_hat).norm(w0)
    sim = Simulation(
        problem=problem,
        dynamic=dyn,
        source=src,
        data=src.init(k_data, problem),
        sigma_hat=sigma_hat,
        dt=jnp.asarray(dt, w0.dtype),
        basis=basis,
        neuron=neuron,
        steps=steps,
        schedule=tuple(int(s) for s in record_schedule(steps, record)),
        optimizer=optimizer,
        max_norm=float(max_norm),
    )
    return sim, w0


def init(sim: Simulation, w0) -> State:
    """The state at step 0, with step 0 recorded."""
    records = jnp.full((len(sim.schedule), len(METRICS)), jnp.nan, w0.dtype)
    records = records.at[0].set(sim.measure(w0))
    return State(
        w=w0,
        opt_state=sim.opt().init(w0),
        k=jnp.zeros((), jnp.int32),
        ptr=jnp.ones((), jnp.int32),
        records=records,
        status=jnp.zeros((), jnp.int32),
        fail_step=jnp.full((), -1, jnp.int32),
    )


def _step(sim: Simulation, state: State) -> State:
    w = state.w
    if reduced_form.applies(sim):  # the 3-coordinate form: closed form, elementwise under vmap
        w_new, nonfinite, diverged = reduced_form.update(sim, w)
        opt_state = state.opt_state
    else:
        opt = sim.opt()
        grad = jax.grad(sim.risk)(w, state.k)
        updates, opt_state = opt.update(grad, state.opt_state, w)
        w_new = sim.dynamic.retract(w + updates, w, sim.precond_cov)
        nonfinite = ~jnp.all(jnp.isfinite(w_new))
        diverged = jnp.linalg.norm(w_new) > sim.max_norm
    code = jnp.where(nonfinite, 1, jnp.where(diverged, 2, 0))
    status = jnp.where(state.status != 0, state.status, code)
    failed = status != 0
    fail_step = jnp.where((state.status == 0) & failed, state.k + 1, state.fail_step)
    keep = lambda new, old: jnp.where(failed, old, new)
    return State(
        w=keep(w_new, w),
        opt_state=jax.tree_util.tree_map(keep, opt_state, state.opt_state),
        k=state.k + 1,
        ptr=state.ptr,
        records=state.records,
        status=status,
        fail_step=fail_step,
    )


def _record(sim: Simulation, state: State) -> State:
    schedule = jnp.asarray(sim.schedule, jnp.int32)
    due = state.k == schedule[jnp.minimum(state.ptr, len(sim.schedule) - 1)]
    due = due & (state.ptr < len(sim.schedule))

    def write(s: State):
        m = jnp.where(s.status != 0, jnp.nan, sim.measure(s.w))
        return s._replace(records=s.records.at[s.ptr].set(m), ptr=s.ptr + 1)

    return jax.lax.cond(due, write, lambda s: s, state)


def advance(sim: Simulation, state: State, num_steps: int) -> State:
    """Run `num_steps` steps (a static length) as one `lax.scan`; steps past `sim.steps` are no-ops."""

    def body(s, _):
        s = jax.lax.cond(s.k < sim.steps, lambda t: _step(sim, t), lambda t: t, s)
        return _record(sim, s), None

    state, _ = jax.lax.scan(body, state, None, length=num_steps)
    return state


def result(sim: Simulation, state: State) -> Trajectory:
    """Package the records and the final weights (lifted back to `R^d` if reduced)."""
    rec = state.records
    w = state.w if sim.basis is None else state.w @ sim.basis
    return Trajectory(
        steps=jnp.asarray(sim.schedule, jnp.int32),
        **{name: rec[..., i] for i, name in enumerate(METRICS)},
        w=w,
        status=state.status,
        fail_step=state.fail_step,
    )


def simulate(problem: Problem, dynamic="normalized", source="population", *, key, **kwargs) -> Trajectory:
    """Train one neuron's first layer and record overlaps at log-spaced steps.

    **Arguments:**
    - `problem`: from `make_problem`.
    - `dynamic`: `"spherical"`, `"normalized"`, `"preconditioned"` or `"vanilla"`.
    - `source`: `"population"` (closed form), `"empirical"` (`n` fixed samples) or
      `"online"` (`batch` fresh samples a step).
    - `key`: PRNG key for `w(0)`, the samples and `SigmaHat`.
    - `dt` (0.05), `steps` (1000), `record` (32 log-spaced points).
    - `n`, `batch`: sample sizes for the empirical and online sources.
    - `n_used`: use only the first `n_used <= n` empirical samples (an array is fine: vmap
      over sample sizes at one padded shape).
    - `n_unlabelled`: samples for `SigmaHat` (0: the true `Sigma`). With it, `normalized` and
      `preconditioned` default to the `sigma_hat` neuron and precondition with `SigmaHat`.
    - `neuron`: override the dynamic's normaliser (`"plain"`, `"sigma"`, `"sigma_hat"`).
    - `optimizer`: an optax transformation used in place of `optax.sgd(dt)`.
    - `reduced`: run the population dynamics in the exact 3 coordinates (O(1) a step).
    - `max_norm`: `||w||` above which a run is marked diverged.
    - `init_key`: draw `w(0)` from this key instead of `key` (width-m phase 1: neurons
      share the samples drawn from `key` and differ in `w(0)`).

    **Returns:** a `Trajectory`. Works under `jax.jit`, `jax.vmap` and `jax.grad` (with
    respect to `dt`, `kappa`, ... passed in as arrays).
    """
    sim, w0 = prepare(problem, dynamic, source, key=key, **kwargs)
    state = advance(sim, init(sim, w0), sim.steps)
    return result(sim, state)
