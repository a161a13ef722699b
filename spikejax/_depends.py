"""Which outputs of a function depend on its arguments, read off its jaxpr.

A sweep builds each configuration's `Simulation` inside a `vmap` over the C configurations
of a seed and keeps its arrays for the batch's chunks. Leaves that do not depend on the
configuration's parameters (the seed's samples `z`, the directions, the online source's
key) must come out of that `vmap` unbatched, or they would be copied C times. `vmap`
itself knows this but does not say it; `depends_on` answers it from one trace.
"""

from __future__ import annotations

import jax
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal


def _sub_jaxpr(eqn):
    """The body of a call-like equation whose inputs and outputs map one to one (`jit`,
    custom derivative calls), or None (`scan`, `cond`, ...: treated as a whole)."""
    for name in ("jaxpr", "call_jaxpr"):
        sub = eqn.params.get(name)
        sub = sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub
        if isinstance(sub, Jaxpr) and len(sub.invars) == len(eqn.invars) and len(sub.outvars) == len(eqn.outvars):
            return sub
    return None


def _walk(jaxpr, varying_in):
    varying = {v for v, b in zip(jaxpr.invars, varying_in) if b}
    for eqn in jaxpr.eqns:
        ins = [not isinstance(v, Literal) and v in varying for v in eqn.invars]
        if not any(ins):
            continue
        sub = _sub_jaxpr(eqn)
        outs = _walk(sub, ins) if sub is not None else [True] * len(eqn.outvars)
        varying.update(v for v, b in zip(eqn.outvars, outs) if b)
    return [not isinstance(v, Literal) and v in varying for v in jaxpr.outvars]


def depends_on(f, *args):
    """A pytree like `f(*args)` of bools: True where the output leaf depends on `args`
    (conservatively: inside a loop or a branch, every output depends on every input).
    `args` may be `jax.ShapeDtypeStruct`s; nothing is computed."""
    closed, shape = jax.make_jaxpr(f, return_shape=True)(*args)
    flags = _walk(closed.jaxpr, [True] * len(closed.jaxpr.invars))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), flags)
