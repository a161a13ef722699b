"""The command line: `spikejax demo`, `spikejax info`."""

from __future__ import annotations

import argparse
import os
import sys
import time


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


def _info(args):
    import jax

    import spikejax

    print(f"spikejax {spikejax.__version__}, jax {jax.__version__}, python {sys.version.split()[0]}")
    print(f"backend {jax.default_backend()}, devices {jax.devices()}")


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
    info = sub.add_parser("info", help="versions and devices")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
