"""The time loop for one configuration: pure `prepare` / `init` / `advance` / `result`.

`simulate(problem, dynamic, source, *, key, solver, dt, steps, saveat)` is the one entry
point; the four pure pieces let a host loop run it in chunks (sweeps: progress bars and
checkpoints). A fixed-step solver takes `steps` steps of `dt`; an adaptive one integrates
to the horizon `T = dt * steps`. Either records `saveat.fn` at the times `t = k dt` of
`saveat`'s log-spaced steps (0 and `T` always), never whole weight histories.

For fixed steps the step counter and the record pointer are unbatched scan carries, so
under `vmap` the recording stays a real `lax.cond` and costs nothing between records.
Failures are values: a configuration that goes non-finite or diverges gets a `status`
and a `fail_step`, NaN records from then on, and reports its last good iterate as `w`; a
deterministic fixed-step run whose last steps reverse each other is marked `oscillating`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._covariance import dot
from ._data import estimate_covariance
from ._dynamics import AbstractDynamic
from ._neuron import AbstractNeuron
from ._chain import frame_start
from ._chain_network import frame_start_rows
from ._problem import Problem, check, check_choice, check_int, check_real
from ._registry import as_neuron
from ._saveat import DIVERGED, MAX_STEPS, METRICS, NONFINITE, OK, OSCILLATING, SaveAt
from ._solvers import AbstractSolver, Dopri5, Euler
from ._sources import AbstractSource, Population
from ._train import Network, attach


class Trajectory(eqx.Module):
    """What one run records.

    **Fields:** `ts` (R,) recorded times `t = k dt`; `steps` (R,) their step indices `k`;
    `ys`: the `SaveAt.fn` pytree with a leading (R,) axis (by default a dict with
    `cos_u`, `rho`, `cos_theta`, `norm`, `risk`, `train_risk`, also readable as
    attributes: `tr.rho`); `w` the final weights; `status` (an index into `STATUS`);
    `fail_step` (-1 when ok); `num_steps` accepted and `num_rejected` rejected steps;
    `passages`: `{name: (thresholds,) first-passage times}` for `SaveAt(passages=...)`.
    """

    ts: Array
    steps: Array
    ys: Any
    w: Array
    status: Array
    fail_step: Array
    num_steps: Array
    num_rejected: Array
    passages: dict

    def _metric(self, name):
        return self.ys[name]

    cos_u = property(lambda self: self._metric("cos_u"))
    rho = property(lambda self: self._metric("rho"))
    cos_theta = property(lambda self: self._metric("cos_theta"))
    norm = property(lambda self: self._metric("norm"))
    risk = property(lambda self: self._metric("risk"))
    train_risk = property(lambda self: self._metric("train_risk"))


class State(NamedTuple):
    w: Array
    good: Array  # the last iterate that passed the failure check (fixed-step runs)
    solver_state: Any
    k: Array  # steps (fixed) or attempts (adaptive) taken; unbatched
    ptr: Array  # next record; unbatched for fixed steps
    t: Array
    h: Array
    records: Any
    status: Array
    fail_step: Array
    accepted: Array
    rejected: Array
    delta: Array  # the last step w_k - w_{k-1} (fixed-step runs: the oscillation check)
    alternating: Array  # the last two steps alternate (see `_alternating`)
    passage: Array  # (P,) first-passage times, NaN until crossed


class Simulation(eqx.Module):
    """Everything one run needs besides its state; built by `prepare`."""

    problem: Problem
    dynamic: AbstractDynamic
    source: AbstractSource
    solver: AbstractSolver
    saveat: SaveAt
    data: Any
    sigma_hat: Any
    dt: Array
    basis: Any
    neuron: AbstractNeuron = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    schedule: tuple = eqx.field(static=True)
    max_norm: float = eqx.field(static=True)

    @property
    def neuron_cov(self):
        """The covariance whose norm normalises the neuron (None for the plain neuron)."""
        return self.neuron.covariance(self.problem.covariance, self.sigma_hat)

    @property
    def precond(self):
        """The preconditioner `P`: `SigmaHat` when estimated, else the true `Sigma`."""
        return self.problem.covariance if self.sigma_hat is None else self.sigma_hat

    @property
    def horizon(self):
        return self.dt * self.steps

    def risk(self, w, k):
        return self.source.risk(w, self.data, k, self)

    def field(self, w, k):
        """`F(w)`: the flow is `dw/dt = -F(w)`."""
        return self.dynamic.direction(w, self.source.grad(w, self.data, k, self), self)

    def measure(self, w):
        return self.saveat.fn(w, self)


RENAMED = {
    "record": "renamed: pass saveat=sj.SaveAt(steps=N)",
    "n": "sample sizes live in the source now: pass sj.Empirical(n) as the source",
    "n_used": "pass sj.Empirical(n, n_used=...) as the source",
    "batch": "pass sj.Online(batch) or sj.Reused(batch, reuse) as the source",
    "optimizer": "renamed: pass solver=sj.Optax(optimizer)",
}


def _refuse_string(name, value, registry):
    if isinstance(value, str):
        raise ValueError(
            f"{name}={value!r} is not allowed; pass an object such as {registry} (names are for TOML "
            f"and the CLI: sj.{name.upper()}S[name] maps them)"
        )


def check_run(*, dt=None, steps=None, n_unlabelled=None, max_norm=None):
    """The run's scalar arguments (the same check for `simulate` and for a config's keys)."""
    if dt is not None:
        check_real("dt", dt, lo=0.0, lo_open=True)
    if steps is not None:
        check_int("steps", steps, 1)
    if n_unlabelled is not None:
        check_int("n_unlabelled", n_unlabelled, 0)
    if max_norm is not None:
        check_real("max_norm", max_norm, lo=0.0, lo_open=True)


REDUCED = (False, True, "auto")


def _reduced_source(problem, dynamic, source, solver, reduced, **run):
    """The source that runs `source` in reduced coordinates (`reduced=True`: or the reason
    why none is exact, raised; `"auto"`: None where none is), None for `reduced=False`."""
    check("reduced", reduced, any(reduced is r for r in REDUCED), "choose True, False or 'auto'")
    if problem.dim is not None:
        check("reduced", reduced, reduced is True,
              f"the problem is held in frame coordinates (make_problem(..., reduced=True), dim={problem.dim}): "
              "run it with reduced=True")
    if reduced is False:
        return None
    try:
        return source.reduced(problem, dynamic, solver, **run)
    except ValueError:
        if reduced is True:
            raise
        return None


def default_solver(source) -> AbstractSolver:
    """The flow (`Dopri5()`) for the population source, the algorithm (`Euler()`) otherwise."""
    return Dopri5() if isinstance(source, Population) else Euler()


def _run_neuron(neuron, dynamic, n_unlabelled: int) -> AbstractNeuron:
    """The run's normaliser: `neuron` (a name or an `AbstractNeuron`), or else the dynamic's
    own, in SigmaHat's geometry when one is drawn (`n_unlabelled > 0`)."""
    if neuron is None:
        neuron = as_neuron(dynamic.default_neuron)
        neuron = neuron.estimated() if n_unlabelled else neuron
    else:
        neuron = as_neuron(neuron)
    check("neuron", neuron.name, not neuron.needs_sigma_hat or n_unlabelled > 0,
          "the sigma_hat neuron needs n_unlabelled > 0 samples to estimate SigmaHat")
    return neuron


START_RULES = ("random", "orthogonal")  # the named rules for w(0): `simulate(..., w0="orthogonal")`


def _start(problem, network, w0, key):
    """`w0` checked against the problem's coordinates, or drawn by a rule: `"random"` (the
    default) uniform on the sphere (a unit row per neuron of a network; in frame coordinates
    for a problem held in them), `"orthogonal"` the same made Sigma-orthogonal to every target
    direction, so that `rho(0) = 0` exactly (`cos_u(0) = 0` too when Sigma = I)."""
    d, dtype = problem.d, problem.target.directions().dtype
    shape = (d,) if network is None else (network.width, d)
    framed_rows = network is not None and problem.dim is not None
    if framed_rows:  # frame coordinates: (W u, W v, R^T), see NetworkChain
        shape = (network.width, 2 + network.width)
    if w0 is not None and not isinstance(w0, str):
        w0 = jnp.asarray(w0, dtype)
        check("w0", w0.shape, w0.shape == shape, f"allowed: an array of shape {shape} (the problem's coordinates)")
        return w0
    rule = "random" if w0 is None else w0
    check_choice("w0", rule, START_RULES)
    check("w0", rule, rule == "random" or not framed_rows,
          "a network on the exact chain starts at random: its frame rows are not a vector space to project in")
    if problem.dim is not None:  # uniform on the sphere of R^dim, in frame coordinates
        w0 = (frame_start(key, problem.dim, dtype) if network is None
              else frame_start_rows(key, network.width, problem.dim, dtype))
    else:
        w0 = jax.random.normal(key, shape, dtype)
        w0 = w0 / jnp.linalg.norm(w0, axis=-1, keepdims=True)
    return w0 if rule == "random" else orthogonal_to_target(w0, problem)


def orthogonal_to_target(w, problem):
    """`w` (a vector or rows) with its Sigma-projection on the span of the target directions
    removed, renormalised: `<w, u_i>_Sigma = 0` for every direction `u_i`."""
    u = problem.target.directions()  # (k, d)
    su = problem.covariance.apply(u)  # Sigma u_i
    c = jnp.linalg.solve(u @ su.T, su @ w.T)  # (k,) or (k, m)
    w = w - c.T @ u
    return w / jnp.linalg.norm(w, axis=-1, keepdims=True)


def prepare(
    problem: Problem,
    dynamic: AbstractDynamic,
    source: AbstractSource | None = None,
    *,
    key,
    solver: AbstractSolver | None = None,
    dt=0.05,
    steps: int = 1000,
    saveat: SaveAt | None = None,
    n_unlabelled: int = 0,
    neuron: str | AbstractNeuron | None = None,
    reduced: bool = False,
    max_norm: float = 1e6,
    init_key=None,
    network=None,
    w0=None,
    **renamed,
):
    """Check the arguments and build `(simulation, w0)`; see `simulate` for their meaning."""
    for name in renamed:
        check(name, renamed[name], False, RENAMED.get(name, "unknown argument; see help(sj.simulate)"))
    source = Population() if source is None else source
    saveat = SaveAt() if saveat is None else saveat
    _refuse_string("dynamic", dynamic, "sj.Normalized()")
    _refuse_string("source", source, "sj.Empirical(n=1024)")
    check("problem", type(problem).__name__, isinstance(problem, Problem), "give a sj.Problem (sj.make_problem)")
    check("dynamic", dynamic, isinstance(dynamic, AbstractDynamic), "give a subclass of sj.AbstractDynamic")
    check("source", source, isinstance(source, AbstractSource), "give a subclass of sj.AbstractSource")
    check("saveat", saveat, isinstance(saveat, SaveAt), "give a sj.SaveAt")
    if network is not None:
        check("network", network, isinstance(network, Network), "give a sj.Network(width=...) or None")
    source.check(problem)
    solver = default_solver(source) if solver is None else solver
    check("solver", solver, isinstance(solver, AbstractSolver), "give sj.Euler(), sj.Dopri5() or sj.Optax(optimizer)")
    check(
        "solver",
        solver,
        not solver.adaptive or source.deterministic,
        f"an adaptive solver needs a deterministic field; {type(source).__name__} draws fresh samples "
        "every step: use sj.Euler()",
    )
    check_run(dt=dt, steps=steps, n_unlabelled=n_unlabelled, max_norm=max_norm)
    d = problem.d
    if n_unlabelled:
        check("n_unlabelled", n_unlabelled, n_unlabelled >= d,
              f"SigmaHat must be invertible: give 0 (use the true Sigma) or at least d={d}")
    neuron = _run_neuron(neuron, dynamic, n_unlabelled)
    reduced_source = _reduced_source(problem, dynamic, source, solver, reduced, n_unlabelled=n_unlabelled,
                                     neuron=neuron, network=network)
    schedule = tuple(int(s) for s in saveat.schedule(steps))

    k_init, k_data, k_unl = jax.random.split(key, 3)
    k_init = k_init if init_key is None else init_key
    w0 = _start(problem, network, w0, k_init)
    basis = None
    if reduced_source is not None:
        source = reduced_source
        problem, w0, basis = source.reduce(problem, w0)
    sigma_hat = estimate_covariance(problem, k_unl, n_unlabelled) if n_unlabelled else None
    sim = Simulation(
        problem=problem,
        dynamic=dynamic,
        source=source,
        solver=solver,
        saveat=saveat,
        data=source.init(k_data, problem),
        sigma_hat=sigma_hat,
        dt=jnp.asarray(dt, w0.dtype),
        basis=basis,
        neuron=neuron,
        steps=steps,
        schedule=schedule,
        max_norm=float(max_norm),
    )
    if network is not None:
        return attach(network, dataclasses.replace(sim, basis=None), w0, jax.random.fold_in(k_init, 1), basis)
    return sim, dynamic.init(w0, sim)


def init(sim: Simulation, w0) -> State:
    """The state at step 0, with step 0 recorded."""
    first = sim.measure(w0)
    n_rec = len(sim.schedule)
    records = jax.tree_util.tree_map(
        lambda x: jnp.full((n_rec,) + jnp.shape(x), jnp.nan, w0.dtype).at[0].set(x), first
    )
    zero = jnp.zeros((), jnp.int32)
    return State(
        w=w0,
        good=w0,
        solver_state=sim.solver.init(w0),
        k=zero,
        ptr=jnp.ones((), jnp.int32),
        t=jnp.zeros((), w0.dtype),
        h=sim.dt.astype(w0.dtype),
        records=records,
        status=zero,
        fail_step=jnp.full((), -1, jnp.int32),
        accepted=zero,
        rejected=zero,
        delta=jnp.zeros_like(w0),
        alternating=jnp.zeros((), bool),
        passage=sim.saveat.passage(w0, sim, jnp.zeros((), w0.dtype), sim.saveat.initial(w0.dtype)),
    )


def state_axes(solver: AbstractSolver) -> State:
    """`vmap` axes of a `State` batched over configurations: the counters of a fixed-step
    run are shared (unbatched), an adaptive run's record pointer is per configuration."""
    adaptive = solver.adaptive
    return State(w=0, good=0, solver_state=0, k=None, ptr=0 if adaptive else None, t=0, h=0, records=0, status=0,
                 fail_step=0, accepted=0, rejected=0, delta=0, alternating=0, passage=0)


def _failure(sim, w_new, status, fail_step, step_no):
    new_status = jnp.where(status != OK, status, _code(sim, w_new))
    failed = new_status != OK
    fail_step = jnp.where((status == OK) & failed, step_no, fail_step)
    return new_status, fail_step, failed


def _write(sim, records, ptr, w, status):
    m = sim.measure(w)
    return jax.tree_util.tree_map(lambda r, x: r.at[ptr].set(jnp.where(status != OK, jnp.nan, x)), records, m)


def _code(sim: Simulation, w):
    """`NONFINITE`, `DIVERGED` or `OK` for the iterate `w`."""
    sq = dot(w, w)  # NaN or inf if any component is: one scalar, cheap under vmap
    return jnp.where(~jnp.isfinite(sq), NONFINITE, jnp.where(sq > sim.max_norm**2, DIVERGED, OK))


def _fixed_step(sim: Simulation, s: State) -> State:
    # The check reads the current iterate, which is in memory. Checking the new one made
    # XLA recompute the whole step inside the select that freezes it (2x slower).
    # A failed run keeps stepping (its NaN or huge iterate goes on harmlessly); `good` keeps
    # its last good iterate, which `result` reports, and its records are NaN from then on.
    w = sim.source.frame(s.w, s.k, sim)
    status = jnp.where(s.status != OK, s.status, _code(sim, w))
    failed = status != OK
    fail_step = jnp.where((s.status == OK) & failed, s.k, s.fail_step)
    raw, _, solver_state = sim.solver.step(lambda v: sim.field(v, s.k), w, sim.dt, s.solver_state)
    w_new = sim.dynamic.retract(raw, w, sim)
    s = s._replace(
        w=w_new,
        good=jnp.where(failed, s.good, w),
        solver_state=solver_state,
        k=s.k + 1,
        status=status,
        fail_step=fail_step,
        passage=jnp.where(failed, s.passage, sim.saveat.passage(w_new, sim, (s.k + 1) * sim.dt, s.passage))
        if sim.saveat.passages else s.passage,
    )
    if not sim.source.deterministic:
        return s

    def track(s):  # the last two steps only: the oscillation check at the end of the run
        delta = w_new - w
        return s._replace(delta=delta, alternating=_alternating(delta, s.delta, w_new))

    return jax.lax.cond(s.k >= sim.steps - 1, track, lambda s: s, s)


def _fixed_record(sim: Simulation, s: State) -> State:
    schedule = jnp.asarray(sim.schedule, jnp.int32)
    due = (s.k == schedule[jnp.minimum(s.ptr, len(sim.schedule) - 1)]) & (s.ptr < len(sim.schedule))

    def write(s: State):
        status = jnp.where(s.status != OK, s.status, _code(sim, s.w))  # the new iterate is checked next step
        return s._replace(records=_write(sim, s.records, s.ptr, s.w, status), ptr=s.ptr + 1)

    return jax.lax.cond(due, write, lambda s: s, s)


def _adaptive_attempt(sim: Simulation, s: State) -> State:
    times = jnp.asarray(sim.schedule, s.t.dtype) * sim.dt
    last = len(sim.schedule) - 1
    active = (s.ptr <= last) & (s.status == OK)
    t_next = times[jnp.minimum(s.ptr, last)]
    h = jnp.minimum(s.h, t_next - s.t)
    raw, ratio, solver_state = sim.solver.step(lambda v: sim.field(v, s.k), s.w, h, s.solver_state)
    w_new = sim.dynamic.retract(raw, s.w, sim)
    accept = active & (ratio <= 1)
    status, fail_step, failed = _failure(sim, jnp.where(accept, w_new, s.w), s.status, s.fail_step, s.accepted + 1)
    accept = accept & ~failed
    hit = accept & (h >= t_next - s.t)
    w = jnp.where(accept, w_new, s.w)
    grow = sim.solver.factor(ratio, h.dtype)
    h_next = jnp.where(accept & (h < s.h), s.h, h * grow)
    records = jax.lax.cond(hit, lambda r: _write(sim, r, jnp.minimum(s.ptr, last), w, status), lambda r: r, s.records)
    return s._replace(
        w=w,
        solver_state=solver_state,
        k=s.k + 1,
        ptr=s.ptr + hit.astype(jnp.int32) + (failed & (s.status == OK)) * (last + 1),
        t=jnp.where(accept, jnp.where(hit, t_next, s.t + h), s.t),
        h=jnp.where(active, h_next, s.h),
        records=records,
        status=status,
        fail_step=fail_step,
        accepted=s.accepted + accept,
        rejected=s.rejected + (active & ~accept & ~failed),
        passage=jnp.where(accept, sim.saveat.passage(w, sim, jnp.where(hit, t_next, s.t + h), s.passage), s.passage)
        if sim.saveat.passages else s.passage,
    )


PREDRAW_SAMPLES = 2**14  # a pre-drawn block's samples per run: a few hundred kB, whatever the batch


def advance(sim: Simulation, state: State, num_steps: int) -> State:
    """Run `num_steps` iterations (a static length) as one `lax.scan`: steps for a
    fixed-step solver (past `sim.steps` they are no-ops), attempts for an adaptive one
    (no-ops once the horizon is reached). A source that `predraws` (the one-pass chain at small
    batches) has its batches drawn a block of steps at a time: the same draws as step by step (the
    path agrees to float64 rounding), with one random-number kernel a block instead of one a
    step, which is what bounds the chain's rate at small batches."""
    if sim.solver.adaptive:
        state, _ = jax.lax.scan(lambda s, _: (_adaptive_attempt(sim, s), None), state, None, length=num_steps)
        return state

    def step(s, sim_k):
        s = jax.lax.cond(s.k < sim.steps, lambda t: _fixed_step(sim_k, t), lambda t: t, s)
        return _fixed_record(sim, s)

    block = min(num_steps, max(1, PREDRAW_SAMPLES // sim.source.batch)) if sim.source.predraws else 1
    if block > 1:

        def blocked(s, _):
            ks = s.k + jnp.arange(block, dtype=s.k.dtype)  # a step past `sim.steps` is a no-op: its draw is unused
            drawn = jax.vmap(lambda k: sim.source.draw(sim.data, k, sim, s.w.dtype))(ks)
            return jax.lax.scan(lambda t, batch: (step(t, dataclasses.replace(sim, data=batch)), None), s, drawn)[0], None

        state, _ = jax.lax.scan(blocked, state, None, length=num_steps // block)
        num_steps %= block
    state, _ = jax.lax.scan(lambda s, _: (step(s, sim), None), state, None, length=num_steps)
    return state


def running(sim: Simulation, state: State):
    """Whether the run still has work: steps left, or (adaptive) the horizon not reached."""
    if sim.solver.adaptive:
        return (state.ptr < len(sim.schedule)) & (state.status == OK)
    return state.k < sim.steps


def _alternating(delta, prev, w):
    """The last two steps reverse each other: `<delta_k, delta_{k-1}> < -|delta_k| |delta_{k-1}| / 2`,
    with the larger of them above 0.1% of `||w||`. A period-2 orbit overshoots back and forth
    (the angle is near 180 degrees; in float32 the two steps need not be the same size); a
    flow, even a slow one, moves on (near 0 degrees). The size floor keeps out the small
    chatter of gradient descent across the kinks of a ReLU on fixed samples (about 3e-4 of
    `||w||` at dt = 0.05, d = 128, n = 4096), which is the algorithm on a non-smooth risk,
    not an orbit standing in for the flow's answer."""
    d1, d0 = dot(delta, delta), dot(prev, prev)
    reverse = dot(delta, prev) < -0.5 * jnp.sqrt(d1 * d0)
    return reverse & (jnp.maximum(d1, d0) > 1e-6 * dot(w, w))


def result(sim: Simulation, state: State) -> Trajectory:
    """Package the records and the final weights (lifted back to `R^d` if reduced)."""
    status, fail_step, w = state.status, state.fail_step, state.w
    if sim.solver.adaptive:
        status = jnp.where((status == OK) & (state.ptr < len(sim.schedule)), MAX_STEPS, status)
    else:
        last = jnp.where(status != OK, status, _code(sim, w))  # the last iterate is not checked in the loop
        fail_step = jnp.where((status == OK) & (last != OK), state.k, fail_step)
        w = jnp.where(last != OK, state.good, w)  # a failed run reports its last good iterate
        status = last
        if sim.source.deterministic:
            status = jnp.where((status == OK) & state.alternating, OSCILLATING, status)
    w = sim.dynamic.lift(w, sim)  # a network run: its TwoLayer
    steps = jnp.asarray(sim.schedule, jnp.int32)
    accepted = state.accepted
    if not sim.solver.adaptive:
        accepted = jnp.where(fail_step >= 0, fail_step - 1, jnp.minimum(state.k, sim.steps))
    return Trajectory(
        ts=steps * sim.dt,
        steps=steps,
        ys=state.records,
        w=w,
        status=status,
        fail_step=fail_step,
        num_steps=accepted,
        num_rejected=state.rejected,
        passages=sim.saveat.unpack(state.passage),
    )


_WHILE_CHUNK = 16  # attempts per while-loop iteration of an unbounded adaptive solve


def simulate(problem: Problem, dynamic: AbstractDynamic, source: AbstractSource | None = None, *, key,
             **kwargs) -> Trajectory:
    """Train one neuron's first layer and record observables at log-spaced times.

    **Arguments:**
    - `problem`: from `make_problem` (or a `Problem` built from a covariance, a target and
      an input law).
    - `dynamic`: `Spherical()`, `Normalized()`, `Preconditioned()`, `Vanilla()` or your own
      `AbstractDynamic`.
    - `source`: `Population()` (default; closed form), `Empirical(n)`, `Online(batch)`,
      `Reused(batch, reuse)` or your own `AbstractSource`. `Population()` refuses an
      activation blind to the target (`beta_s = 0`); a sampled source warns and runs.
    - `key`: PRNG key for `w(0)`, the samples and `SigmaHat`.
    - `solver`: `Dopri5()` (the flow to a tolerance; default for `Population`), `Euler()`
      (gradient descent with step `dt`; default for sampled sources) or `Optax(opt)`.
    - `dt` (0.05), `steps` (1000): the step and the horizon `T = dt * steps`.
    - `saveat`: `SaveAt(steps=32, fn=metrics)`: when and what to record.
    - `n_unlabelled`: samples for `SigmaHat` (0: the true `Sigma`). With it, `Normalized`
      and `Preconditioned` default to the `sigma_hat` neuron and precondition with `SigmaHat`.
    - `neuron`: override the dynamic's normaliser: `"plain"`, `"sigma"`, `"sigma_hat"` or an
      `AbstractNeuron` (`sj.Plain()`, `sj.SigmaNorm()`, `sj.SigmaHatNorm()`).
    - `reduced`: run in exact reduced coordinates: the population dynamics in 3 coordinates
      (O(1) a step); `Online`/`Reused` as the exact Markov chain on `(<w,u>, <w,v>,
      |w_perp|)` (O(batch) or O(batch^2) a step, free of `d`; needs float64, see
      `sj.Chain`). `"auto"`: wherever exact, else the d-dimensional form. A refused
      `True` names the reason (non-Gaussian inputs, SigmaHat, Adam, ...).
    - `w0`: the initial weight in the problem's coordinates, or a rule: `"random"` (the default,
      uniform on the sphere) or `"orthogonal"` (made Sigma-orthogonal to the target: `rho(0) = 0`).
    - `max_norm`: `||w||` above which a run is marked diverged.
    - `init_key`: draw `w(0)` from this key instead of `key` (neurons sharing samples).
    - `network`: `Network(width, scaling, second_layer, lr_ratio, biases, ...)` trains a
      width-`m` network as a whole (see `_train`): `dynamic` moves each first-layer row,
      `Trajectory.w` is the final `TwoLayer`, `SaveAt(fn)` receives the `TwoLayer`.

    **Returns:** a `Trajectory`. Works under `jax.jit`, `jax.vmap` and `jax.grad` (with
    respect to `dt`, `kappa`, ... passed in as arrays; reverse mode through `Dopri5` needs
    a bounded `Dopri5(max_steps=N)`).
    """
    sim, w0 = prepare(problem, dynamic, source, key=key, **kwargs)
    state = init(sim, w0)
    if sim.solver.adaptive and sim.solver.max_steps is None:
        state = jax.lax.while_loop(lambda s: running(sim, s), lambda s: advance(sim, s, _WHILE_CHUNK), state)
    else:
        state = advance(sim, state, sim.solver.max_steps if sim.solver.adaptive else sim.steps)
    return result(sim, state)


def stability_limit(sim: Simulation, w, iters: int = 40, rtol: float = 1e-3):
    """`2 / |lambda_max|` of the field's Jacobian at `w`, by power iteration on `jax.jvp`:
    forward Euler (and gradient descent) with a step above it is unstable near `w` and can
    settle on period-2 orbits instead of following the flow. An estimate (the curvature
    changes along the run: near the target it is typically larger than at `w(0)`). The
    iteration stops once two successive estimates agree to `rtol` (at most `iters`): each
    iteration costs about one step, and a sweep runs this for every configuration."""
    field = lambda v: sim.field(v, jnp.zeros((), jnp.int32))
    v0 = jax.random.normal(jax.random.key(0), w.shape, w.dtype)

    def body(carry):
        i, v, _, cur = carry
        jv = jax.jvp(field, (w,), (v / jnp.sqrt(dot(v, v)),))[1]
        return i + 1, jv, cur, jnp.sqrt(dot(jv, jv))

    def more(carry):
        i, _, prev, cur = carry
        return (i < iters) & ((i < 3) | (jnp.abs(cur - prev) > rtol * cur))

    inf = jnp.full((), jnp.inf, w.dtype)
    _, _, _, norm = jax.lax.while_loop(more, body, (jnp.zeros((), jnp.int32), v0, inf, inf))
    return 2.0 / norm


def step_limit(sim: Simulation, w0):
    """The plan-time estimate of the largest stable Euler step: the smaller
    `stability_limit` at the start `w0` and at the target direction `u` placed on the
    dynamic's constraint (the curvature along the spike and the bulk grows near `u`)."""
    target = sim.dynamic.init(sim.problem.u * jnp.sqrt(dot(w0, w0)), sim)
    # both points in one vmapped power iteration: one copy of the field's JVP to compile, and a
    # lane that has converged keeps its estimate while the other iterates
    return jnp.min(jax.vmap(lambda w: stability_limit(sim, w))(jnp.stack([w0, target])))


def check_dt(problem, dynamic, source=None, *, key, dt, steps, solver=None, **kwargs) -> dict:
    """The step-convergence check of a result that claims to be a flow: rerun with a finer
    discretisation over the same horizon and report the largest change of each final metric.

    A fixed-step solver reruns at `dt / 2` with `2 * steps`; an adaptive one at 100x tighter
    `rtol` and `atol` (`dt` is only its first step's guess).

    **Returns:** `{metric: |final| change}` plus `"max"` over the metrics finite in both runs.
    """
    solver = default_solver(Population() if source is None else source) if solver is None else solver
    a = simulate(problem, dynamic, source, key=key, solver=solver, dt=dt, steps=steps, **kwargs)
    if solver.adaptive:
        finer = dataclasses.replace(solver, rtol=solver.rtol / 100, atol=solver.atol / 100)
        b = simulate(problem, dynamic, source, key=key, solver=finer, dt=dt, steps=steps, **kwargs)
    else:
        b = simulate(problem, dynamic, source, key=key, solver=solver, dt=dt / 2, steps=2 * steps, **kwargs)
    out = {}
    for name in METRICS:
        x, y = np.asarray(a.ys[name])[..., -1], np.asarray(b.ys[name])[..., -1]
        if np.all(np.isfinite(x)) and np.all(np.isfinite(y)):
            out[name] = float(np.max(np.abs(np.abs(x) - np.abs(y))))
    out["max"] = max(out.values()) if out else float("nan")
    return out
