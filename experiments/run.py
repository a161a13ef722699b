"""The one entry point of the experiments: run (or redraw) the configs given.

    python -m experiments.run [CONFIG|DIR ...] [--scale small|large] [--render [--refit]] [--jobs N]
                              [--only NAME ...] [--targets T ...] [--checks-only] [--docs DIR]

No CONFIG: every claim config, `configs/claims/*.toml` (`make reproduce`). A claim config's kind
picks its module in `experiments/claims/`; a config of another script's kind (networks,
multi_index, network_vs_kernels) is handed to that script's `main` with the same flags.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from tqdm import tqdm

from .claims import KINDS, claim
from .harness.config import load_config, load_experiment
from .harness.io import data_path, read_data, show, write_json
from .harness.parallel import run_parallel
from .summary import write_summary

CLAIMS_DIR = Path("configs/claims")
SCRIPTS = dict(spherical="networks", width="networks", joint_vs_layerwise="networks",
               multi_index_staircase="multi_index", multi_index_spike="multi_index", multi_index_nstar="multi_index",
               multi_index_fullbatch="multi_index", network_vs_kernels="network_vs_kernels")


def config_paths(items) -> list[Path]:
    """The config files named, a folder standing for its `*.toml`; none: `configs/claims/`."""
    paths = []
    for item in items or [CLAIMS_DIR]:
        p = Path(item)
        paths += sorted(p.glob("*.toml")) if p.is_dir() else [p]
    return paths


def run_config(cfg, docs, bar):
    """One claim config: its module's `run` (a top-level function, so that workers can pickle it)."""
    return claim(cfg["kind"]).run(cfg, docs, bar)


def units(cfg) -> int:
    return claim(cfg["kind"]).units(cfg)


def _parser():
    ap = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", help="config files or folders (default: configs/claims)")
    ap.add_argument("--scale", default="small", help="the configs' [scale.<name>] to merge (small, large, full)")
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--only", nargs="*", default=None, help="only the configs of these names")
    ap.add_argument("--targets", nargs="*", default=None,
                    help="passage and full-batch configs: rerun only these targets, keep the others from docs/data")
    ap.add_argument("--render", action="store_true", help="redraw tables and figures from docs/data, no runs")
    ap.add_argument("--refit", action="store_true", help="with --render: refit passage rows from their stored points")
    ap.add_argument("--checks-only", action="store_true",
                    help="run only the step/horizon checks of the committed n* tables in docs/data (base n* not rerun)")
    ap.add_argument("--jobs", type=int, default=1, help="run the configs in this many processes (make reproduce: 2)")
    return ap


def _split(paths):
    """`(claim paths, script paths)` by the config's kind."""
    claims, scripts = [], []
    for p in paths:
        kind = load_experiment(p, scale=None).get("kind")
        (scripts if kind in SCRIPTS else claims).append((p, kind))
    return claims, scripts


def _run_script(path, kind, args):
    """A config of another script's kind: that script's `main`, the flags in its dialect."""
    flags = [str(path)] + (["--render"] if args.render else [])
    tqdm.write(f"{path}: kind {kind!r}, run by experiments/{SCRIPTS[kind]}.py")
    importlib.import_module(f"experiments.{SCRIPTS[kind]}").main(flags)


def render(cfgs, docs, refit=False):
    """Every config's figures and block from its committed data, then the summary."""
    for cfg in cfgs:
        mod = claim(cfg["kind"])
        out = read_data(docs, cfg["name"])
        if refit and hasattr(mod, "refit"):
            out = mod.refit(out)
            write_json(data_path(docs, cfg["name"]), out)
        mod.render(out, docs) if hasattr(mod, "render") else show(out, docs, mod.plot, mod.table)
    write_summary(docs)


def checks(cfgs, docs, scale):
    """`--checks-only`: the step/horizon checks of the committed tables of the kinds that have them."""
    cfgs = [c for c in cfgs if hasattr(claim(c["kind"]), "check") and c.get("horizon_check", "largest_d") == "largest_d"]
    t0 = time.time()
    with tqdm(total=sum(claim(c["kind"]).check_units(c) for c in cfgs), desc="checks", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for cfg in cfgs:
            t1 = time.time()
            claim(cfg["kind"]).check(cfg, docs, bar)
            tqdm.write(f"{cfg['name']} checks: {time.time() - t1:.0f} s")
    tqdm.write(f"checks ({scale}): {time.time() - t0:.0f} s in all")


def run(cfgs, docs, jobs, scale):
    """The configs, sequentially or in `jobs` processes (the memo-sharing kinds in one), then the summary."""
    t0 = time.time()
    if jobs > 1 and len(cfgs) > 1:
        shared = [c for c in cfgs if getattr(claim(c["kind"]), "MEMO_GROUP", False)]
        groups = ([shared] if shared else []) + [[c] for c in cfgs if c not in shared]
        run_parallel(groups, run_config, units, docs, jobs)
    else:
        with tqdm(total=sum(units(c) for c in cfgs), desc="run", file=sys.stderr, dynamic_ncols=True) as bar:
            for cfg in cfgs:
                t1 = time.time()
                run_config(cfg, docs, bar)
                tqdm.write(f"{cfg['name']}: {time.time() - t1:.0f} s")
    write_summary(docs)
    tqdm.write(f"run ({scale}): {time.time() - t0:.0f} s in all")


def main(argv=None):
    ap = _parser()
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs={args.jobs} is not allowed; give 1 or more processes")
    claim_paths, scripts = _split(config_paths(args.configs))
    # --render: a config committed at another scale only renders from its stored data all the same
    cfgs = [dict(load_config(p, args.scale, kinds=KINDS, skip_other_scales=not args.render), scale=args.scale)
            for p, _ in claim_paths]
    if args.only:
        cfgs = [c for c in cfgs if c["name"] in args.only]
        scripts = [(p, k) for p, k in scripts if p.stem in args.only]
    for c in cfgs:
        if c.get("skip"):
            tqdm.write(f"{c['name']}: committed at scale {' / '.join(c['only_scales'])} only; "
                       f"skipped at {args.scale} (--scale {c['only_scales'][0]} reruns it)")
    cfgs = [c for c in cfgs if not c.get("skip")]
    if args.targets is not None:
        cfgs = [dict(c, only_targets=list(args.targets)) if c["kind"] in ("passage", "fullbatch") else c for c in cfgs]
    docs = Path(args.docs)
    if args.render:
        render(cfgs, docs, args.refit)
    elif args.checks_only:
        checks(cfgs, docs, args.scale)
    elif cfgs:
        run(cfgs, docs, args.jobs, args.scale)
    for path, kind in scripts:
        _run_script(path, kind, args)


if __name__ == "__main__":
    main()
