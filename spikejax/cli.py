"""The command line: `spikejax demo | sweep | plot | merge | info`."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time


def _bytes(text: str) -> int:
    """'512M', '4G', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"--max-memory={text!r} is not allowed; give bytes like 4G or 512M")
    return int(float(m.group(1)) * 1024 ** ("", "K", "M", "G", "T").index(m.group(2).upper()))


def _demo(args):
    from ._demo import spherical_vs_normalized
    from ._plot import plot_demo

    kappas = tuple(args.kappa)
    t0 = time.perf_counter()
    curves = spherical_vs_normalized(d=args.d, kappas=kappas, dt=args.dt, steps=args.steps, seeds=args.seeds)
    os.makedirs(args.out, exist_ok=True)
    path = plot_demo(curves, kappas, args.dt, os.path.join(args.out, "demo.png"), d=args.d)
    print(f"d={args.d}, theta = u, ReLU neuron, h2 link, squared loss, {args.seeds} seeds, {args.steps} steps")
    print(f"{'kappa':>8} {'spherical |cos(w,u)|':>22} {'normalized |cos(w,u)|':>22}")
    for i, k in enumerate(kappas):
        s = curves["spherical"][1][i, :, -1].mean()
        n = curves["normalized"][1][i, :, -1].mean()
        print(f"{k:8g} {s:22.4f} {n:22.4f}")
    print(f"figure: {path}  ({time.perf_counter() - t0:.1f} s)")


def _sweep(args):
    import jax

    from ._sweep import sweep

    devices = None
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, args.process_count, args.process_index)
        devices = jax.local_devices()
    t0 = time.perf_counter()
    ds = sweep(
        args.config, out=args.out, resume=args.resume, force=args.force, progress=not args.no_progress,
        max_memory=args.max_memory, chunk=args.chunk, devices=devices,
        process_index=args.process_index, process_count=args.process_count,
    )
    wall = time.perf_counter() - t0
    n_cfg = int(ds["status"].size)
    steps = int(ds["step"].values[-1])
    counts = {s: int((ds["status"] == s).sum()) for s in ("ok", "nonfinite", "diverged", "error")}
    print(f"{n_cfg} configurations x {steps} steps in {wall:.1f} s ({n_cfg * steps / wall:.3g} config-steps/s)")
    print("status: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v or k == "ok"))
    print(f"results: {os.path.join(args.out, 'results.nc' if args.process_count == 1 else f'results.part{args.process_index}.nc')}")


def _plot(args):
    from ._io import load_results
    from ._plot import plot_curves, plot_heatmaps

    ds = load_results(args.dir)
    heat = plot_heatmaps(ds, os.path.join(args.dir, "heatmap.png"), x=args.x, y=args.y, var=args.var)
    made = [plot_curves(ds, os.path.join(args.dir, "curves.png"), var=args.var)]
    if heat:
        made.append(heat)
    elif args.x or args.y:
        print("no heatmap: it needs two swept axes besides seed and dynamic", file=sys.stderr)
    print("\n".join(p for png in made for p in (png, png[: -len(".png")] + ".pdf")))


def _merge(args):
    from ._io import merge_parts

    ds = merge_parts(args.dir)
    print(f"merged {int(ds['status'].size)} configurations into {os.path.join(args.dir, 'results.nc')}")


def _info(args):
    import jax

    import spikejax
    from ._sweep import default_memory_budget

    print(f"spikejax {spikejax.__version__}, jax {jax.__version__}, python {sys.version.split()[0]}")
    print(f"backend {jax.default_backend()}, devices {jax.devices()}")
    print(f"default memory budget {default_memory_budget() / 2**30:.1f} GiB")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="spikejax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="spherical vs normalized population flows at theta = u")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--d", type=int, default=256)
    demo.add_argument("--kappa", type=float, nargs="+", default=[1.0, 10.0, 100.0, 1000.0])
    demo.add_argument("--dt", type=float, default=0.5)
    demo.add_argument("--steps", type=int, default=20_000)
    demo.add_argument("--seeds", type=int, default=4)
    demo.set_defaults(func=_demo)
    sw = sub.add_parser("sweep", help="run a grid of configurations from a TOML file")
    sw.add_argument("config")
    sw.add_argument("--out", required=True)
    sw.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    sw.add_argument("--force", action="store_true", help="overwrite --out even if it holds another config")
    sw.add_argument("--max-memory", type=_bytes, default=None, help="bytes a batch may use, e.g. 4G")
    sw.add_argument("--chunk", type=int, default=None, help="steps per compiled chunk")
    sw.add_argument("--no-progress", action="store_true")
    sw.add_argument("--process-index", type=int, default=0)
    sw.add_argument("--process-count", type=int, default=1)
    sw.add_argument("--coordinator", default=None, help="host:port for jax.distributed.initialize")
    sw.set_defaults(func=_sweep)
    pl = sub.add_parser("plot", help="figures of a results directory")
    pl.add_argument("dir")
    pl.add_argument("--var", nargs="+", default=None,
                    help="variables to draw, e.g. rho cos_u norm risk (default: rho cos_u)")
    pl.add_argument("--x", default=None, help="heatmap x axis, a swept key (the other is filled in)")
    pl.add_argument("--y", default=None, help="heatmap y axis, a swept key")
    pl.set_defaults(func=_plot)
    mg = sub.add_parser("merge", help="assemble the parts of a multi-process sweep")
    mg.add_argument("dir")
    mg.set_defaults(func=_merge)
    info = sub.add_parser("info", help="versions, devices, default memory budget")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:
        parser.exit(2, f"spikejax {args.command}: error: {err}\n")


if __name__ == "__main__":
    main()
