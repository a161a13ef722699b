# Extending spikejax by name: the classes registered in my_extensions.py, in simulate, a TOML sweep
# and the sample-complexity searches. Run it from a directory holding both files.
# --8<-- [start:simulate]
import pathlib

import jax
import numpy as np

import my_extensions as mine  # importing the file registers its classes
import spikejax as sj

problem = sj.make_problem(16, key=jax.random.key(0), kappa=10.0, r1=0.25, link="h2_plus_h3")  # a registered link
assert problem.link.information_exponent() == 2 and np.allclose(problem.link.coeffs[:4], [0, 0, 1, 0.5], atol=1e-8)


def run(dynamic, source=sj.Population(), solver=sj.Euler(), dt=0.05, steps=40, p=problem):
    return sj.simulate(p, dynamic, source, key=jax.random.key(1), solver=solver, dt=dt, steps=steps)


# the dynamic: a step dt at half speed is a step dt / 2 of sj.Spherical
assert np.allclose(run(mine.HalfSpherical()).w, run(sj.Spherical(), dt=0.025).w, atol=1e-6)
# the source: the same batches as sj.Reused, bit for bit
assert np.array_equal(run(sj.Normalized(), mine.FreshEveryR(32, 4)).w, run(sj.Normalized(), sj.Reused(32, 4)).w)
# the loss: a step dt of -2 y f is a step 2 dt of -y f (the same fresh samples)
doubled = sj.make_problem(16, key=jax.random.key(0), kappa=10.0, r1=0.25, link="h2_plus_h3", activation="h2",
                          loss=mine.DoubledCorrelation())
plain = sj.make_problem(16, key=jax.random.key(0), kappa=10.0, r1=0.25, link="h2_plus_h3", activation="h2",
                        loss="correlation")
assert np.allclose(run(sj.Spherical(), sj.Online(32), dt=0.02, p=doubled).w,
                   run(sj.Spherical(), sj.Online(32), dt=0.04, p=plain).w, atol=1e-5)
# the solver: second order, so halving dt divides the error against the Dopri5 flow by about 4
exact = run(sj.Spherical(), solver=sj.Dopri5(rtol=1e-8, atol=1e-10), dt=0.4, steps=5).w
error = [np.linalg.norm(run(sj.Spherical(), solver=mine.Heun(), dt=dt, steps=round(2 / dt)).w - exact)
         for dt in (0.2, 0.1)]
assert 3.0 < error[0] / error[1] < 5.0, error
# the inputs: unit variance, bounded; they run with a sampled source
z = mine.Uniform().sample(jax.random.key(2), (200_000,))
assert abs(float(z.var()) - 1) < 0.01 and float(abs(z).max()) <= 3**0.5
bounded = sj.make_problem(16, key=jax.random.key(0), kappa=10.0, r1=0.25, link="h2_plus_h3", inputs=mine.Uniform())
assert sj.STATUS[int(run(sj.Normalized(), sj.Online(32), p=bounded).status)] == "ok"
# the target: a registered two-index target, by name
pair = sj.multi_index_problem(16, key=jax.random.key(0), g="pair_h2", k=2, activation="h2")
assert sj.STATUS[int(run(sj.Normalized(), solver=sj.Euler(), p=pair).status)] == "ok"
# --8<-- [end:simulate]

# --8<-- [start:sweep]
pathlib.Path("by_name.toml").write_text("""
seeds = 2
d = 16
kappa = [1.0, 10.0]
r1 = 0.25
dynamic = "half_spherical"     # every name below is one registered by my_extensions.py
source = "fresh_every_r"
batch = 32                     # fills FreshEveryR.batch
reuse = 4                      # fills FreshEveryR.reuse
solver = "heun"
loss = "doubled_correlation"
input_dist = "uniform"
link = "h2_plus_h3"
activation = "h2"
dt = 0.05
steps = 40
record = 5
""")
ds = sj.sweep("by_name.toml", out="by_name_results", progress=False)
# the configuration (seed 1, kappa 10) alone through simulate, with the seed's keys
keys = sj.config_keys(1)
alone = sj.simulate(
    sj.make_problem(16, key=keys.problem, kappa=10.0, r1=0.25, link="h2_plus_h3", activation="h2",
                    loss=mine.DoubledCorrelation(), inputs=mine.Uniform()),
    mine.HalfSpherical(), mine.FreshEveryR(32, 4), key=keys.run, solver=mine.Heun(), dt=0.05, steps=40,
    saveat=sj.SaveAt(steps=5))
assert np.allclose(ds["rho"].sel(seed=1, kappa=10.0).values, alone.rho, atol=1e-5)
targets = sj.sweep(dict(d=16, target="pair_h2", activation="h2", dynamic="normalized", solver="euler", dt=0.05,
                        steps=40, record=5), progress=False)
assert targets.sizes["direction"] == 2 and (targets["status"].values == "ok").all()
# --8<-- [end:sweep]

# --8<-- [start:search]
found = sj.passage_n(doubled, mine.HalfSpherical(), mine.FreshEveryR(16, 2), keys=jax.random.split(jax.random.key(3), 8),
                     dt=0.01, steps=4000, thresholds=(0.9,), solver=mine.Heun())
assert np.isfinite(found.n).mean() >= 0.5 and np.nanmedian(found.n) > 20 * 16, found.n  # tens of batches
grid = sj.search_n(problem, mine.HalfSpherical(), n_grid=[16, 64, 256], keys=jax.random.split(jax.random.key(4), 4),
                   dt=0.2, steps=100, solver=mine.Heun())
assert np.isfinite(np.asarray(grid.rho)).all()
print(f"registered classes ran in simulate, a TOML sweep ({ds.sizes['seed']} seeds x {ds.sizes['kappa']} kappa) "
      f"and the searches (median n* at |rho| = 0.9: {np.nanmedian(found.n[..., 0]):.0f} samples)")
# --8<-- [end:search]
