# Extending spikejax: a new source, a fresh batch reused for R steps, written in user code.
# --8<-- [start:source]
import equinox as eqx
import jax
import numpy as np

import spikejax as sj


class FreshEveryR(sj.AbstractSource):
    """A fresh batch of `batch` samples every `reuse` steps: step k uses batch k // reuse."""

    batch: int = eqx.field(static=True)  # static: sizes fix array shapes
    reuse: int = eqx.field(static=True)
    deterministic = False  # the field changes from step to step: Euler, no adaptive solver

    def init(self, key, problem):
        return key  # the source's data: batches are drawn on the fly from this key

    def risk(self, w, key, k, sim):
        j = k // self.reuse
        # batch 0 is drawn from the key itself (as sj.Empirical draws), batch j > 0 from fold_in(key, j)
        batch_key = jax.lax.cond(j == 0, lambda: key, lambda: jax.random.fold_in(key, j))
        z, y = sj.draw(sim.problem, batch_key, self.batch)
        return sj.sample_risk(w, z, y, sim.problem, sim.neuron_cov)
# --8<-- [end:source]


# --8<-- [start:compare]
problem = sj.make_problem(32, key=jax.random.key(0), kappa=5.0, r1=0.25, noise=0.1)


def run(source, steps=200):
    return sj.simulate(problem, sj.Normalized(), source, key=jax.random.key(3), dt=0.05, steps=steps)


mine, builtin = run(FreshEveryR(batch=64, reuse=10)), run(sj.Reused(batch=64, reuse=10))
assert np.array_equal(mine.w, builtin.w) and np.array_equal(mine.rho, builtin.rho)  # bit for bit
print(f"FreshEveryR and sj.Reused: identical; final |rho| = {abs(float(mine.rho[-1])):.3f}")
# The knob spans the algorithms: reuse = 1 is online SGD, reuse >= steps is full batch on 64 samples.
online = run(FreshEveryR(batch=64, reuse=1))
assert np.array_equal(online.w, run(sj.Online(batch=64)).w)
full_batch = run(FreshEveryR(batch=64, reuse=200))
assert np.allclose(full_batch.w, run(sj.Empirical(n=64)).w, atol=1e-5)
assert not np.allclose(online.w, full_batch.w, atol=1e-2)  # and the algorithms do differ
# --8<-- [end:compare]
