"""The `spikejax sweep` command line from two source trees, alternated (A B A B ...) in one run.

    python benchmarks/ab_sweep.py --base DIR [--rounds 3] [--grids population empirical online]

`DIR` is another checkout of spikejax (say `git worktree add /tmp/base <commit>`); this tree
is the other. Each round runs, for each of three small grids (population, empirical, online),
the CLI in a fresh process with `PYTHONPATH` pointing at one tree, with a fresh compilation
cache each time (so both trees compile), and reads the config-steps per second the CLI
prints. A refactor of the layer above the engine should leave the ratio within the rounds'
spread.
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GRIDS = {
    "population": 'seeds = 4\nd = 256\nkappa = [1.0, 3.0, 10.0, 30.0]\nr1 = [0.0, 0.25]\ndt = 0.3\nsteps = 2000\n',
    "empirical": 'seeds = 8\nd = 128\nkappa = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]\nsource = "empirical"\n'
                 'n = 2048\ndynamic = "spherical"\ndt = 0.2\nsteps = 300\n',
    "online": 'seeds = 8\nd = 256\nkappa = [1.0, 10.0, 100.0]\nsource = "online"\nbatch = 64\ndt = 0.02\n'
              'steps = 1000\n',
}


def run_cli(tree: str, toml: str, workdir: str) -> tuple[float, float]:
    """`(wall seconds, config-steps per second)` of one CLI run of `toml` on the source `tree`."""
    cfg = os.path.join(workdir, "cfg.toml")
    with open(cfg, "w") as f:
        f.write(toml)
    env = dict(os.environ, PYTHONPATH=tree, XDG_CACHE_HOME=tempfile.mkdtemp(dir=workdir))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "spikejax.cli", "sweep", cfg, "--out", os.path.join(workdir, "o"),
                           "--force", "--no-progress"], env=env, capture_output=True, text=True, cwd=workdir)
    wall = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    rate = float(re.search(r"at ([0-9.e+]+) config-steps/s", done.stdout).group(1))
    return wall, rate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the other source tree (a checkout of spikejax)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    args = ap.parse_args(argv)
    grids = {g: GRIDS[g] for g in args.grids}
    trees = {"base": os.path.abspath(args.base), "this": ROOT}
    out = {(g, t): [] for g in grids for t in trees}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for grid, toml in grids.items():
                for name, tree in trees.items():
                    out[grid, name].append(run_cli(tree, toml, workdir))
    print(f"{'grid':<11} {'base wall s':>12} {'this wall s':>12} {'this/base rate (median)':>24} {'rounds':>7}")
    for grid in grids:
        base, this = out[grid, "base"], out[grid, "this"]
        med = lambda xs: sorted(xs)[len(xs) // 2]
        ratios = sorted(t[1] / b[1] for b, t in zip(base, this))
        print(f"{grid:<11} {med([w for w, _ in base]):>12.1f} {med([w for w, _ in this]):>12.1f} "
              f"{med(ratios):>14.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}] {len(ratios):>7}")


if __name__ == "__main__":
    main()
