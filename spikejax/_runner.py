"""A group's compiled functions: build every configuration's simulation once, then step it.

A batch of a group is `seeds x C` configurations. Its `init` builds every configuration's
simulation once (directions, samples, labels, `SigmaHat`), with a `vmap` over the C
configurations of a seed in which the seed's draws `z` stay unbatched (common random
numbers: one GEMM a step instead of C matvecs); the seeds run one after another on CPU
(each seed's samples stay in cache) and as a second `vmap` on accelerators. A chunk is a
`lax.scan` of static length that only steps the kept simulations. A configuration's
randomness depends only on its seed, so its result does not depend on the grid, the chunk
length, the batch size or the number of devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._config import multi_target
from ._data import config_keys
from ._depends import depends_on
from ._grid import ARRAY_KEYS, Group
from ._multi_problem import multi_index_problem
from ._profile import NO_PROFILE
from ._problem import check_choice, make_problem
from ._readout import fit_readout
from ._registry import DYNAMICS, INPUTS, SOLVERS, SOURCES, build
from ._saveat import SaveAt
from ._simulate import advance, init, prepare, result, state_axes, step_limit
from ._spec import SweepSpec, passage_names


def network_from(static: dict):
    """The `sj.Network` a group trains (`network = true`), or None: `width` independent
    neurons. Its keys are static: one compiled call per value."""
    if not static.get("network"):
        return None
    from ._train import Network

    return build(Network, static)


@dataclasses.dataclass(frozen=True)
class Parts:
    """The objects a group's configurations are built from: looked up in the registries by
    the config's names, their fields filled from its values (`build`)."""

    static: dict
    spec: SweepSpec
    dynamic: object
    source_cls: type
    masked: bool  # sample sizes vary inside the group: `n_used` masks the padded ones
    n_pad: int | None
    solver: object
    inputs: object
    saveat: SaveAt
    net: object
    width: int

    @classmethod
    def of(cls, group: Group, spec: SweepSpec) -> Parts:
        st = group.static
        source_cls = SOURCES[st["source"]]
        solver_name = source_cls.default_solver if st["solver"] == "auto" else st["solver"]
        net = network_from(st)  # a width-m network trained as a whole, or None (independent neurons)
        # a multi-index target records `subspace_metrics` (its default observables) and the first
        # passages of every direction's coverage and best overlap and of the subspace at `threshold`
        passages = None if spec.k is None else passage_names(spec.k, st["threshold"])
        # the sweep drives an adaptive solver chunk by chunk up to `max_steps` attempts itself
        return cls(static=st, spec=spec, dynamic=build(DYNAMICS[st["dynamic"]], st), source_cls=source_cls,
                   masked="n" in group.values and len(np.unique(group.values["n"])) > 1, n_pad=group.n_pad,
                   solver=build(SOLVERS[solver_name], dict(st, atol=st["rtol"] * 1e-3, max_steps=None)),
                   inputs=build(INPUTS[st["input_dist"]], st), saveat=SaveAt(steps=spec.record, passages=passages),
                   net=net, width=1 if net is not None else st["width"])

    @property
    def neurons(self):
        return jnp.arange(self.width)

    def source(self, p):
        """The source of configuration `p` (its sample size `n` padded to the group's)."""
        return build(self.source_cls, dict(self.static, n=self.n_pad, n_used=p["n"] if self.masked else None))

    def simulation(self, seed_key, p, neuron=None):
        """`(problem, simulation, w0)`; neuron i of a width-m layer draws `w(0)` from
        `fold_in(key, 3 + i)` and shares the samples with the other neurons."""
        st, keys = self.static, config_keys(seed_key)
        source = self.source(p)
        if self.spec.k is not None:
            g, k = multi_target(st)
            problem = multi_index_problem(
                st["d"], key=keys.problem, g=g, k=k, spikes=st["spikes"] or (), activation=st["activation"],
                loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=self.inputs,
            )
        else:
            spike = {"kappa": p["kappa"]} if "kappa" in p else {"r2": p["r2"]}
            problem = make_problem(
                st["d"], key=keys.problem, r1=p["r1"], link=st["link"], activation=st["activation"],
                loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=self.inputs,
                reduced=bool(st["reduced"]) and source.reduces_in_frame, **spike,
            )  # a source whose reduced form runs in a frame (the chain) builds its problem there: any d
        init_key = None if neuron is None else keys.neuron(neuron)
        sim, w0 = prepare(
            problem, self.dynamic, source, key=keys.run, solver=self.solver, dt=p["dt"], steps=self.spec.steps,
            saveat=self.saveat, n_unlabelled=st["n_unlabelled"], reduced=st["reduced"], max_norm=st["max_norm"],
            init_key=init_key, network=self.net, w0=st["w0"],
        )
        return problem, sim, w0

    def per_neuron(self, f, *state, out=None):
        """`f(neuron, ...)` for one neuron, or vmapped over the `width` neurons."""
        sax = state_axes(self.solver)
        if self.width == 1:
            return f(None, *state)
        axes = (0,) + (sax,) * len(state)
        return jax.vmap(f, axes, sax if out is None else out)(self.neurons, *state)

    def readout(self, seed_key, p, state):
        """Phase 2 on the trained first layer: `test_mse` of a validated ridge readout."""
        st, sax = self.static, state_axes(self.solver)
        problem, sim, _ = self.simulation(seed_key, p)
        lift = lambda i, s: result(self.simulation(seed_key, p, i)[1], s).w
        w = lift(None, state)[None] if self.width == 1 else jax.vmap(lift, (0, sax))(self.neurons, state)
        fit = fit_readout(config_keys(seed_key).readout, problem, w, n2=st["n2"], n_val=st["n_val"],
                          n_test=st["n_test"], neuron=sim.neuron, sigma_hat=sim.sigma_hat)
        return fit.test_mse


class Runner:
    """The compiled functions of one group, on (seeds, C) arrays.

    `init` builds every configuration's `Simulation` once (problem, samples, `SigmaHat`),
    its state at step 0 and its step-limit estimate (a separate program), and keeps the simulations' arrays for
    the batch; `chunk_fn` only steps them (a chunk never redraws the data) and returns the
    status each run would end with. Inside a seed the C configurations are one `vmap` with
    the seed's draws unbatched (one GEMM a step). The seeds run one after another
    (`seed_loop="map"`, a `lax.map`: a seed's samples stay in cache through the chunk; the
    default on CPU, 1.65x at 8 seeds x 64 and 6x at 64 x 8, BENCHMARKS.md) or as a second
    `vmap` (`"vmap"`: one batched GEMM a step; the default on accelerators)."""

    def __init__(self, group: Group, spec, chunk: int, mesh=None, seed_loop: str | None = None):
        spec = SweepSpec.of(spec)
        self.steps, self.record_count, self.chunk = spec.steps, len(spec.schedule), chunk
        self.seed_loop = seed_loop or self.default_seed_loop()
        check_choice("seed_loop", self.seed_loop, ("map", "vmap"))
        self.parts = Parts.of(group, spec)
        self.adaptive = self.parts.solver.adaptive
        self.multi = spec.k is not None
        # the step limit at w(0) and at u: fixed steps on a deterministic field, one neuron, one u
        self.checked = (not self.adaptive and self.parts.source(group.configs[0]).deterministic
                        and self.parts.width == 1 and self.parts.net is None and not self.multi)
        self.n2 = group.static["n2"]
        self.p_shape = {k: jax.ShapeDtypeStruct((), spec.float_dtype) for k in ARRAY_KEYS if k in group.values}
        self.mesh = mesh
        self.compiled = False  # set once its first chunk has run (the progress bar says "compiling" until then)
        self._layout = None
        self._arrays = self._limits = None
        self._pending = {}
        self.profile = NO_PROFILE  # `run` sets a `Profile` to time init, the step limit and compile waits
        self._programs()

    @staticmethod
    def default_seed_loop() -> str:
        """`"map"` on CPU (a seed's samples stay in cache through a chunk: x1.2-6 over a
        `vmap` of seeds, BENCHMARKS.md), `"vmap"` on accelerators (one batched GEMM)."""
        return "map" if jax.default_backend() == "cpu" else "vmap"

    def _programs(self):
        """Jit the batch's programs: `init`, the step `limit`, a `chunk` of steps, the final
        `status` and phase 2's `readout`, each over (seeds, C)."""
        parts, chunk = self.parts, self.chunk
        sax = state_axes(parts.solver)

        def init_one(seed_key, p):
            """The simulation's arrays and the state at step 0."""
            _, sim, w0 = parts.simulation(seed_key, p)
            if parts.width == 1:
                state = init(sim, w0)
            else:
                state = jax.vmap(lambda i: init(sim, parts.simulation(seed_key, p, i)[2]), 0, sax)(parts.neurons)
            return eqx.partition(sim, eqx.is_array)[0], state

        def limit_one(arrays, w0):
            return step_limit(eqx.combine(arrays, self.layout()[1]), w0)

        def status_one(arrays, state):
            """The status `result` would report now (it adds `oscillating` and `max_steps`)."""
            sim = eqx.combine(arrays, self.layout()[1])
            return parts.per_neuron(lambda i, s: result(sim, s).status, state, out=0)

        def chunk_one(arrays, state):
            sim = eqx.combine(arrays, self.layout()[1])
            state = parts.per_neuron(lambda i, s: advance(sim, s, chunk), state)
            return state, status_one(arrays, state)

        def nest(f, seed_in, seed_out, config_in, config_out):
            """`f` of one configuration over (seeds, C): a `vmap` over C inside `seed_loop`."""
            inner = jax.vmap(f, config_in, config_out)
            if self.seed_loop == "vmap":
                return jax.vmap(inner, seed_in, seed_out)
            return _seed_map(inner, seed_in, seed_out)

        arrays = lambda: self.layout()[0]  # the simulation's C axes, traced on first use
        self._init = jax.jit(_named("init", lambda k, p: nest(init_one, 0, (0, sax), (None, 0), (arrays(), sax))(k, p)))
        # a separate program (not inside init) so that the three compile in parallel (`precompile`)
        self._limit = jax.jit(_named("step_limit", lambda a, w: nest(limit_one, 0, 0, (arrays(), 0), 0)(a, w))
                              ) if self.checked else None
        self._chunk = jax.jit(_named("chunk", lambda a, s: nest(chunk_one, (0, sax), (sax, 0), (arrays(), sax),
                                                                (sax, 0))(a, s)), donate_argnums=1)
        self._status = jax.jit(_named("status", lambda a, s: nest(status_one, (0, sax), 0, (arrays(), sax), 0)(a, s)))
        vnest = lambda f, a_in, a_out: jax.vmap(jax.vmap(f, a_in[1], a_out), a_in[0], a_out)
        self._readout = jax.jit(_named("readout", vnest(parts.readout, ((0, 0, sax), (None, 0, sax)), 0))
                                ) if self.n2 else None

    def layout(self):
        """`(axes, static)` of a configuration's `Simulation`: `axes` is 0 on the array
        leaves that depend on the configuration's parameters and None on those shared by a
        seed's configurations (its samples, directions and keys: kept once a seed, never
        copied C times); `static` holds the non-array leaves."""
        if self._layout is None:
            holder = []

            def arrays(p):
                dyn, static = eqx.partition(self.parts.simulation(jax.random.key(0), p)[1], eqx.is_array)
                holder.append(static)
                return dyn

            varying = depends_on(arrays, self.p_shape)
            self._layout = (jax.tree_util.tree_map(lambda v: 0 if v else None, varying), holder[0])
        return self._layout

    def _place(self, tree):
        if self.mesh is None:
            return tree
        from jax.sharding import NamedSharding, PartitionSpec as P

        def put(x):
            spec = P(None, "c") if getattr(x, "ndim", 0) >= 2 else P()
            return jax.device_put(x, NamedSharding(self.mesh, spec))

        return jax.tree_util.tree_map(put, tree)

    def precompile(self, keys, params):
        """Compile `chunk` and the step limit in background threads (XLA releases the GIL),
        so that they overlap `init`'s compile; their first calls wait for them."""
        if self.mesh is not None:
            return
        arrays, state = jax.eval_shape(self._init, keys, params)
        todo = {"chunk": self._chunk.lower(arrays, state)}  # traced here, in the calling thread
        if self._limit is not None:
            todo["limit"] = self._limit.lower(arrays, state.w)

        def compile_quietly(lowered):
            with contextlib.suppress(Exception):  # a failure is raised again by the first call
                lowered.compile()

        for name, lowered in todo.items():
            self._pending[name] = threading.Thread(target=compile_quietly, args=(lowered,), daemon=True)
            self._pending[name].start()

    def _wait(self, name):
        thread = self._pending.pop(name, None)
        if thread is not None:
            with self.profile.span("compile wait"):
                thread.join()

    def init(self, keys, params):
        """The batch's state at step 0; builds and keeps its simulations for `chunk_fn`,
        and estimates the step limits at step 0 (`step_limits`)."""
        with self.profile.span("init"):
            self._arrays, state = jax.block_until_ready(self._init(self._place(keys), self._place(params)))
        if self._limit is None:
            self._limits = np.full(np.shape(params["dt"]), np.nan)
        else:
            self._wait("limit")
            with self.profile.span("step limit"):
                self._limits = np.asarray(self._limit(self._arrays, state.w))
        return state

    def chunk_fn(self, keys, params, state):
        """`(state, status)` after one more chunk of the batch that `init` built."""
        self._wait("chunk")
        return self._chunk(self._arrays, self._place(state))

    def release(self):
        """Drop the batch's simulations (its samples): one batch at a time holds memory."""
        self._arrays = None

    def step_limits(self, keys, params):
        """(seeds, C) plan-time estimates of the largest stable Euler step (`step_limit`), for
        a fixed-step solver on a deterministic source of one-neuron runs (NaN otherwise),
        made by `init`."""
        return self._limits

    def status(self, keys, params, state):
        """(seeds, C[, width]) final status codes."""
        return self._status(self._arrays, self._place(state))

    def readout(self, keys, params, state):
        """(seeds, C) test errors of phase 2, or None when the config has no `n2`."""
        if self._readout is None:
            return None
        return self._readout(self._place(keys), self._place(params), self._place(state))


def _named(name: str, f):
    """`f` under the name its compile is reported by (`jax.monitoring`, `--profile`)."""
    f.__name__ = f.__qualname__ = name
    return f


def _seed_map(f, in_axes, out_axes):
    """`jax.vmap(f, in_axes, out_axes)` computed seed by seed with `lax.map`: the leaves with
    no seed axis (a fixed-step run's step counter) are the same for every seed."""
    none = lambda x: x is None

    def spread(axes, args, n):
        return jax.tree_util.tree_map(
            lambda a, x: x if a == 0 else jax.tree_util.tree_map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), x),
            axes, args, is_leaf=none)

    def g(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        n = next(jax.tree_util.tree_leaves(x)[0].shape[0] for a, x in zip(axes, args) if a == 0)
        out = jax.lax.map(lambda xs: f(*xs), spread(axes, args, n))
        return jax.tree_util.tree_map(
            lambda a, x: x if a == 0 else jax.tree_util.tree_map(lambda v: v[0], x), out_axes, out, is_leaf=none)

    return g


def params_array(group: Group, sl: slice, n_dev: int = 1):
    """(seeds, C) arrays of the array keys for a slice of C, padded to a multiple of `n_dev`."""
    width = len(range(*sl.indices(group.size)))
    pad = (-width) % n_dev
    out = {}
    for k in ARRAY_KEYS:
        if k not in group.values:
            continue
        arr = np.asarray(group.values[k][sl], dtype=float)
        arr = np.concatenate([arr, np.repeat(arr[-1:], pad)])
        out[k] = jnp.asarray(np.broadcast_to(arr, (len(group.seeds), len(arr))))
    return out, pad


def seed_keys(group: Group):
    """(seeds,) root keys `jax.random.key(seed)` of a group; `config_keys` splits each."""
    return jax.vmap(jax.random.key)(jnp.asarray(group.seeds, dtype=jnp.uint32))


def traced_runner(g: Group, spec: SweepSpec, chunk, mesh, n_dev, sl) -> Runner:
    """The group's `Runner`, its init and chunk traced on abstract values (no compile), so
    that what the engine refuses at trace time is refused before anything runs."""
    runner = Runner(g, spec, chunk, mesh)
    params, _ = params_array(g, sl, n_dev)
    arrays, state = jax.eval_shape(runner._init, seed_keys(g), params)
    jax.eval_shape(runner._chunk, arrays, state)
    return runner
