# Tutorial 2: sample complexity n*(d) and the exponent eta in n* ~ d^eta, with a bootstrap interval.
# Run: python docs/tutorials/sample_complexity.py   (TINY=1 runs it at a seconds-long size)
# --8<-- [start:setup]
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import spikejax as sj

TINY = os.environ.get("TINY") == "1"  # the test suite runs every tutorial with TINY=1
OUT = Path(os.environ.get("SPIKEJAX_OUT", "out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
# --8<-- [end:setup]

# --8<-- [start:search]
dims = [16, 24, 32, 48] if TINY else [32, 64, 128, 256]
seeds = 6 if TINY else 16
n_over_d = 2.0 ** np.arange(-3, 6)  # the same grid in n / d at every d: 1/8 ... 32
searches = []
for d in dims:
    problem = sj.make_problem(d, key=jax.random.key(d), r2=0.0, r1=0.0, link="h2", activation="relu",
                              noise=0.25)
    keys = jax.random.split(jax.random.key(1000 + d), seeds)
    # every (seed, n) pair of this d in one compiled call; the smaller data sets are prefixes of the larger
    search = sj.search_n(problem, sj.Normalized(), n_grid=np.round(d * n_over_d).astype(int), keys=keys,
                         dt=0.2, steps=300)
    searches.append(search)
    print(f"d = {d:4d}: n* = {search.n_star():7.1f}  (|rho(w_T)| >= 0.9 in half the seeds)")
# --8<-- [end:search]

# --8<-- [start:fit]
fit = sj.bootstrap_exponent(
    dims,
    np.stack([s.n_grid for s in searches]),  # (D, G): one grid per dimension
    np.stack([s.rho for s in searches]),  # (D, seeds, G): final |rho| per seed and n
    threshold=0.9,
    n_boot=200 if TINY else 1000,
)
print(f"eta = {fit.eta:.2f}, 90% bootstrap interval [{fit.lo:.2f}, {fit.hi:.2f}]")
# --8<-- [end:fit]

# --8<-- [start:plot]
fig, ax = plt.subplots(figsize=(4.2, 3.4))
ax.loglog(fit.d, fit.n_star, "o", label="n*(d)")
line = np.exp(fit.log_c) * fit.d**fit.eta
ax.loglog(fit.d, line, "-", label=f"eta = {fit.eta:.2f} [{fit.lo:.2f}, {fit.hi:.2f}]")
ax.set_xticks(fit.d, [f"{d:g}" for d in fit.d], minor=False)
ax.set_xticks([], minor=True)  # plain labels at the measured d only
ax.set(xlabel="d", ylabel="n*", title="normalized, h2 link, ReLU, r2 = r1 = 0")
ax.legend(frameon=False)
fig.tight_layout()
fig.savefig(OUT / "sample_complexity.png", dpi=120)
# --8<-- [end:plot]
