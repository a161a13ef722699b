"""The default experiment: the spherical failure against the normalised fix (SPEC claim 1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._dynamics import Normalized, Spherical
from ._problem import make_problem
from ._saveat import SaveAt
from ._simulate import simulate


def spherical_vs_normalized(d=256, kappas=(1.0, 10.0, 100.0, 1000.0), dt=0.5, steps=20_000, seeds=4, record=60):
    """Population `Spherical` and `Normalized` flows at `theta = u` (ReLU, `h2` link, squared
    loss), solved to tolerance (`Dopri5`) to `T = dt * steps`, vmapped over `kappa` and seeds
    in one compiled call per dynamic.

    **Returns:** dict dynamic -> (steps (R,), |cos(w, u)| of shape (kappa, seed, R)).
    """
    kappas = jnp.asarray(kappas)
    keys = jax.random.split(jax.random.key(0), seeds)
    out = {}
    for name, dynamic in (("spherical", Spherical()), ("normalized", Normalized())):

        def one(kappa, key):
            p = make_problem(d, key=key, kappa=kappa, r1=0.0, link="h2", activation="relu")
            return simulate(p, dynamic, key=key, dt=dt, steps=steps, saveat=SaveAt(steps=record))

        run = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
        tr = run(kappas, keys)
        out[name] = (np.asarray(tr.steps[0, 0]), np.abs(np.asarray(tr.cos_u)))
    return out
