"""The command line: `spikejax demo | sweep | plot | merge | info`.

Exit status: 0 done; 1 some configuration ended with status `error`; 2 a user error (bad
config, unusable directory, missing file), said in one line; 130 interrupted (Ctrl-C),
with what was saved and how to resume.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np
import time

EXAMPLES = """examples:
  spikejax sweep configs/phase_diagram.toml --out out/phase --dry-run   # plan only
  spikejax sweep configs/phase_diagram.toml --out out/phase
  spikejax sweep configs/phase_diagram.toml --out out/phase --resume    # after Ctrl-C
  spikejax plot out/phase
  spikejax demo --d 128 --steps 5000
  spikejax info
"""


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults, keep the examples' line breaks."""


def _bytes(text: str) -> int:
    """'512M', '4G', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"--max-memory={text!r} is not allowed; give bytes like 4G or 512M")
    return int(float(m.group(1)) * 1024 ** ("", "K", "M", "G", "T").index(m.group(2).upper()))


def cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache: JAX's own variable
    JAX_COMPILATION_CACHE_DIR where it is set, else $XDG_CACHE_HOME/spikejax/jax."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spikejax", "jax")


def _use_cache(args):
    """Turn on JAX's persistent compilation cache (unless --no-cache): a second run of the
    same configuration loads its compiled programs instead of compiling them."""
    if getattr(args, "no_cache", True):
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # our compiles are ~1 s


def _demo(args):
    from ._demo import spherical_vs_normalized
    from .plot import plot_demo

    _use_cache(args)
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


class _Interrupt:
    """Ctrl-C ends the sweep at once, from a watcher thread, with one line saying what is
    saved. The main thread may be inside XLA (compiling or running a chunk), where a
    KeyboardInterrupt cannot land cleanly (it crashed with a segfault); the watcher wakes
    on the signal itself and leaves with `os._exit`. Every file is written atomically, so
    the directory is as resumable as after a kill."""

    def __init__(self):
        self.ckpt = None  # the checkpoint directory, once known
        self.total = None  # this process's batches, once planned
        self.bar = False

    def install(self):
        import signal
        import socket
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        r, w = socket.socketpair()
        w.setblocking(False)
        signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, lambda *_: None)
        self._sock = (r, w)  # keep both ends alive
        threading.Thread(target=self._watch, args=(r,), daemon=True).start()

    def _watch(self, r):
        import signal

        while True:
            data = r.recv(64)
            if data and signal.SIGINT in data:
                break
        if self.total is None:
            msg = "interrupted before anything was saved"
        else:
            saved = len(list(self.ckpt.glob("batch-*.npz"))) if self.ckpt and self.ckpt.exists() else 0
            msg = f"interrupted; {saved}/{self.total} batches saved; rerun with --resume"
        try:
            sys.stdout.flush()
        finally:
            os.write(2, (("\n" if self.bar else "") + msg + "\n").encode())
            os._exit(130)


def _import_extensions(modules):
    """Import the user's modules named on the command line (`--import`), so that what they
    register is known before the config is read. The command line names code; a config never
    does (configs are data)."""
    import importlib

    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"--import {name!r} is not allowed; it cannot be imported ({err})") from None


def _start_profile():
    """A `Profile` whose first span is the start-up: from the process's start (or, where
    that is unknown, from now) to the command's first step after its imports."""
    from ._profile import Profile, process_start

    start = process_start()
    profile = Profile(start)
    if start is not None:
        profile.add("start-up", start, time.time())
    return profile


def _sweep(args):
    import jax

    from ._io import paths
    from ._plan import preflight
    from ._profile import NO_PROFILE, Profile
    from ._saveat import STATUS
    from ._sweep import run

    interrupt = _Interrupt()
    interrupt.install()
    _use_cache(args)
    _import_extensions(args.imports)
    devices = None
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, args.process_count, args.process_index)
        devices = jax.local_devices()
    t0 = time.perf_counter()
    from ._spec import SweepSpec

    profile = _start_profile() if args.profile else NO_PROFILE
    with profile.span("plan"):
        spec = SweepSpec.of(args.config)  # resolved once; its float type follows `precision`
        if spec.fixed("precision") == "float64":
            jax.config.update("jax_enable_x64", True)  # this process runs this one sweep
        pre = preflight(
            spec, out=args.out, resume=args.resume, force=args.force, max_memory=args.max_memory,
            chunk=args.chunk, devices=devices, process_index=args.process_index, process_count=args.process_count,
            trace=False,
        )
        print(pre.summary(), flush=True)
        pre.trace()
    print(f"checked and planned in {time.perf_counter() - t0:.2f} s", flush=True)
    if args.dry_run:
        return 0
    part = None if args.process_count == 1 else args.process_index
    interrupt.ckpt = paths(args.out, part)[1]
    interrupt.total = len(pre.batches)
    interrupt.bar = not args.no_progress
    ds, stats = run(pre, out=args.out, resume=args.resume, force=args.force, progress=not args.no_progress,
                    log=lambda line: print(line, file=sys.stderr, flush=True), profile=profile)
    wall = time.perf_counter() - t0
    n_cfg = int(ds["status"].size)
    steps = int(ds["step"].values[-1])
    counts = {s: int((ds["status"] == s).sum()) for s in STATUS}
    if pre.complete:
        print(f"already complete: {n_cfg} configurations x {steps} steps; nothing computed")
    else:
        resumed = f", {stats.batches_resumed} of {len(pre.batches)} batches resumed" if stats.batches_resumed else ""
        rate = stats.config_steps / stats.seconds if stats.seconds else 0.0
        print(f"{n_cfg} configurations x {steps} steps in {wall:.1f} s "
              f"({stats.config_steps:,} config-steps computed here at {rate:.3g} config-steps/s{resumed})")
    print("status: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v or k == "ok"))
    print(f"results: {paths(args.out, part)[0]}")
    if isinstance(profile, Profile):
        print("where the time went (also in the results' attribute `profile`, up to writing):\n" + profile.table())
    if counts["error"]:
        first = str(ds.attrs.get("errors", "")).splitlines()[:1]
        print(f"spikejax sweep: error: {counts['error']} configuration(s) could not run"
              + (f"; first: {first[0]}" if first else ""), file=sys.stderr)
        return 1
    return 0


def _plot(args):
    from ._io import load_results
    from .plot import plot_curves, plot_heatmaps

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
    from ._budget import default_memory_budget

    if args.dir is not None:
        return _info_dir(args.dir)

    print(f"spikejax {spikejax.__version__}, jax {jax.__version__}, python {sys.version.split()[0]}")
    print(f"backend {jax.default_backend()}, devices {jax.devices()}")
    print(f"default memory budget {default_memory_budget() / 1e9:.1f} GB")
    print(f"compilation cache {cache_dir()}")


def _info_dir(path):
    """Summarise a results directory: its config, status counts, timings and versions."""
    import json

    from ._io import load_results

    ds = load_results(path)
    config = json.loads(ds.attrs.get("config", "{}"))
    swept = {k: v for k, v in config.items() if isinstance(v, list) and len(v) > 1}
    fixed = {k: v[0] for k, v in config.items() if isinstance(v, list) and len(v) == 1 and v[0] is not None}
    print(f"results: {path} ({int(ds['status'].size)} configurations, {ds.sizes.get('step', 0)} records)")
    print("swept: " + ", ".join(f"{k} {v}" for k, v in swept.items()))
    print("fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    values, counts = np.unique(np.asarray(ds["status"].values, str), return_counts=True)
    print("status: " + ", ".join(f"{v} {c}" for v, c in zip(values, counts)))
    for key in ("created", "command", "seconds", "spikejax", "jax", "jaxlib", "equinox", "optax", "xarray",
                "numpy", "python", "backend", "devices"):
        if key in ds.attrs:
            print(f"{key}: {ds.attrs[key]}")
    if ds.attrs.get("errors"):
        print("errors: " + str(ds.attrs["errors"]).splitlines()[0])
    return 0


def _sweep_parser(sub, cache):
    """The `sweep` command's arguments."""
    sw = sub.add_parser(
        "sweep", parents=[cache], formatter_class=_Help,
        help="run a grid of configurations from a TOML file",
        description="Run every configuration of the grid in a TOML file (keys: docs/sweeps.md) and write "
                    "DIR/results.nc. Before compiling it checks the config and prints the plan: grid size, "
                    "groups, batches, estimated memory and time. Checkpoints after every chunk; Ctrl-C "
                    "stops at once and --resume continues.",
        epilog="examples:\n"
               "  spikejax sweep configs/phase_diagram.toml --out out/phase --dry-run\n"
               "  spikejax sweep configs/phase_diagram.toml --out out/phase --max-memory 4G\n"
               "  spikejax sweep configs/phase_diagram.toml --out out/phase --resume")
    sw.add_argument("config", help="a TOML file of sweep keys")
    sw.add_argument("--out", required=True, metavar="DIR", help="results directory (created if needed)")
    sw.add_argument("--dry-run", action="store_true", help="check and plan, print the summary, compute nothing")
    sw.add_argument("--resume", action="store_true",
                    help="continue from the checkpoints in --out; load finished results as they are")
    sw.add_argument("--force", action="store_true",
                    help="overwrite --out even if it holds another config (its results, checkpoints and figures)")
    sw.add_argument("--max-memory", type=_bytes, default=None, metavar="BYTES",
                    help="device memory a batch may use, e.g. 4G (default: half the device's or host's)")
    sw.add_argument("--chunk", type=int, default=None, help="steps per compiled chunk (default: about steps/20)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--profile", action="store_true",
                    help="print where the time went (start-up, plan, compile, data, steps, checkpoints, writing) "
                         "and store it in the results' attribute `profile`")
    sw.add_argument("--process-index", type=int, default=0, help="this process's index in a multi-process sweep")
    sw.add_argument("--process-count", type=int, default=1, help="processes in a multi-process sweep")
    sw.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="address for jax.distributed.initialize (multi-process sweeps)")
    sw.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                    help="import this module first (from the current directory or PYTHONPATH): your own "
                         "classes registered with sj.register become names the config can use; repeatable")
    sw.set_defaults(func=_sweep)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="spikejax", description=__doc__, epilog=EXAMPLES, formatter_class=_Help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,sweep,plot,merge,info}")
    cache = argparse.ArgumentParser(add_help=False)
    cache.add_argument("--no-cache", action="store_true",
                       help=f"do not use the persistent compilation cache ({cache_dir()}; "
                            "$XDG_CACHE_HOME moves it)")
    demo = sub.add_parser(
        "demo", parents=[cache], formatter_class=_Help,
        help="spherical vs normalized population flows at theta = u",
        description="Population flows of the spherical and normalized dynamics at theta = u (ReLU neuron, "
                    "h2 link), final |cos(w, u)| per kappa, and a figure demo.png.",
        epilog="example:\n  spikejax demo --d 128 --kappa 1 100 --steps 5000 --out out/demo")
    demo.add_argument("--out", default="out/demo", help="directory for demo.png")
    demo.add_argument("--d", type=int, default=256, help="dimension")
    demo.add_argument("--kappa", type=float, nargs="+", default=[1.0, 10.0, 100.0, 1000.0],
                      help="spike strengths")
    demo.add_argument("--dt", type=float, default=0.5, help="step size")
    demo.add_argument("--steps", type=int, default=20_000, help="steps")
    demo.add_argument("--seeds", type=int, default=4, help="seeds per kappa")
    demo.set_defaults(func=_demo)
    _sweep_parser(sub, cache)
    pl = sub.add_parser(
        "plot", formatter_class=_Help, help="figures of a results directory",
        description="Draw DIR/curves.{png,pdf} (every configuration, small multiples) and, when two or more "
                    "keys are swept, DIR/heatmap.{png,pdf} (final values, annotated, seed mean).",
        epilog="examples:\n  spikejax plot out/phase\n  spikejax plot out/phase --var rho --x r2 --y r1")
    pl.add_argument("dir", help="a results directory written by spikejax sweep")
    pl.add_argument("--var", nargs="+", default=None,
                    help="variables to draw, e.g. rho cos_u norm risk (default: rho cos_u)")
    pl.add_argument("--x", default=None, help="heatmap x axis, a swept key (the other is filled in)")
    pl.add_argument("--y", default=None, help="heatmap y axis, a swept key")
    pl.set_defaults(func=_plot)
    mg = sub.add_parser(
        "merge", formatter_class=_Help, help="assemble the parts of a multi-process sweep",
        description="Assemble DIR/results.part*.nc of a multi-process sweep into DIR/results.nc.",
        epilog="example:\n  spikejax merge out/phase")
    mg.add_argument("dir", help="the results directory the processes wrote to")
    mg.set_defaults(func=_merge)
    info = sub.add_parser(
        "info", formatter_class=_Help, help="versions, devices, default memory budget",
        description="Versions, backend and devices, default memory budget, compilation cache; with DIR, a "
                    "summary of that results directory (config, status counts, timings, versions).",
        epilog="examples:\n  spikejax info\n  spikejax info out/phase")
    info.add_argument("dir", nargs="?", default=None, help="a results directory to summarise")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (ValueError, OSError) as err:
        parser.exit(2, f"spikejax {args.command}: error: {_one_line(err)}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"\nspikejax {args.command}: interrupted\n")
    if code:
        sys.exit(code)


def _one_line(err: BaseException) -> str:
    """The message of a user error on one line (an OSError names the file)."""
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(err.strerror or ""):
        if isinstance(err, FileNotFoundError) and not err.strerror:
            return str(err)
        return f"{err.strerror or err}: {err.filename!s}"
    return " ".join(str(err).split("\n")[0].split()) if str(err) else type(err).__name__


if __name__ == "__main__":
    main()
