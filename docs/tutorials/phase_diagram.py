# Tutorial 1: a whole phase diagram (spike strength x spike-target alignment x dynamic) in one call.
# Run: python docs/tutorials/phase_diagram.py   (TINY=1 runs it at a seconds-long size)
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

# --8<-- [start:sweep]
config = {
    "seeds": 2 if TINY else 4,
    "d": 64 if TINY else 256,
    "r2": [0.0, 1.0] if TINY else [0.0, 0.25, 0.5, 0.75, 1.0],  # kappa = d**r2
    "r1": [0.0, 0.5] if TINY else [0.0, 0.125, 0.25, 0.375, 0.5],  # <u, theta> = d**-r1
    "dynamic": ["spherical", "normalized"],
    "link": "h2",
    "activation": "relu",
    "source": "population",  # exact expectations: the gradient flow ...
    "reduced": True,  # ... in its exact 3-coordinate form, O(1) a step whatever d is
    "dt": 0.5,
    "steps": 2000 if TINY else 10000,  # horizon T = dt * steps
}
ds = sj.sweep(config, out=OUT / "phase_diagram", force=True, progress=not TINY)
print(dict(ds.sizes))  # one axis per swept key, plus step
# --8<-- [end:sweep]

# --8<-- [start:final]
final = abs(ds[["rho", "cos_u"]].isel(step=-1)).median("seed")  # |.|: w and -w are equivalent for h2
print(final.cos_u.sel(r1=0.0).to_pandas())  # spike on the target: |cos_u| against r2, per dynamic
print("statuses:", dict(zip(*np.unique(ds.status.values, return_counts=True))))
# --8<-- [end:final]

# --8<-- [start:flow]
# The population source is solved by Dopri5 to a tolerance (a flow, not an algorithm); the
# result must not move when the tolerance is tightened 100x. Check the hardest corner:
corner = sj.make_problem(config["d"], key=jax.random.key(0), r2=max(config["r2"]), r1=0.0)
change = sj.check_dt(corner, sj.Spherical(), key=jax.random.key(1), dt=config["dt"], steps=config["steps"],
                     reduced=True)
print(f"largest change of a final metric with 100x tighter tolerances: {change['max']:.1e}")
# --8<-- [end:flow]

# --8<-- [start:plot]
dynamics = list(final.dynamic.values)
fig, axes = plt.subplots(2, len(dynamics), figsize=(3.6 * len(dynamics) + 1, 6.4), squeeze=False,
                         layout="constrained")
for row, var in enumerate(["rho", "cos_u"]):
    for col, dyn in enumerate(dynamics):
        grid = final[var].sel(dynamic=dyn).transpose("r1", "r2")
        ax = axes[row, col]
        im = ax.imshow(grid.values, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.sizes["r2"]), [f"{v:g}" for v in grid.r2.values])
        ax.set_yticks(range(grid.sizes["r1"]), [f"{v:g}" for v in grid.r1.values])
        for (i, j), v in np.ndenumerate(grid.values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
        ax.set_title(f"{dyn}: final |{var}|")
        if row == 1:
            ax.set_xlabel("r2 (kappa = d^r2)")
        if col == 0:
            ax.set_ylabel("r1 (<u, theta> = d^-r1)")
fig.colorbar(im, ax=axes, shrink=0.8)
fig.savefig(OUT / "phase_diagram.png", dpi=120)
# --8<-- [end:plot]
