"""Network vs rotationally invariant kernels (SPEC claim 6): test error against total samples.

    python experiments/network_vs_kernels.py configs/network_vs_kernels.toml [--out DIR] [--figure PNG] [--render]

For every link, `d`, total sample size `n + n2` and dynamic, one compiled call vmaps
`spikejax.learn` over `r2` and seeds. The kernel baselines ride along with the first dynamic:
every dynamic draws the same samples from the same key, so the kernels see exactly the
network's `n + n2` training samples and the same validation and test samples. Prints the
crossing table (the first total at which the median test MSE is within `threshold` of the
noise floor) and the fitted log-log slope of the crossing against `d`; writes
`results.json` (and its copy `docs/data/network_vs_kernels.json`, from which `--render` redraws
the table and both figures without a run) and the figures, PNG and PDF.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # kernel ridge is solved in float64
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import spikejax as sj  # noqa: E402

from experiments.harness import load_experiment, pyplot, save_figure, write_json  # noqa: E402

NETWORK_LABEL = {"normalized": "net normalized", "preconditioned": "net preconditioned", "spherical": "net spherical"}
KERNEL_LABEL = {"arccos": "kernel arc-cos", "rbf": "kernel RBF", "rf": "ReLU random features"}


def load(path):
    return load_experiment(path, scale=None, required=(
        "ds", "r2s", "totals", "links", "network", "kernels", "noise", "threshold", "ridges"))


def _grid(cfg):
    """Flattened (r2, seed, total) axes: r2 values, keys and (n, n2) per configuration."""
    totals = np.asarray(cfg["totals"])
    n = np.round(totals * cfg["phase1_fraction"]).astype(int)
    r2, seed, t = np.meshgrid(np.arange(len(cfg["r2s"])), np.arange(cfg["seeds"]), np.arange(len(totals)), indexing="ij")
    keys = jax.random.split(jax.random.key(cfg["seed"]), cfg["seeds"])[seed.ravel()]
    r2s = jnp.asarray(cfg["r2s"], float)[r2.ravel()]
    return r2s, keys, jnp.asarray(n[t.ravel()]), jnp.asarray((totals - n)[t.ravel()]), (len(cfg["r2s"]), cfg["seeds"], len(totals))


def _problem(cfg, link, d, r2):
    return sj.make_problem(
        d, key=jax.random.key(cfg["seed"] + 1), r2=r2, r1=cfg["r1"], link=link["link"],
        activation=link["activation"], noise=cfg["noise"],
    )


def _sizes(cfg):
    totals = np.asarray(cfg["totals"])
    n = np.round(totals * cfg["phase1_fraction"]).astype(int)
    return dict(n=int(n.max()), n2=int((totals - n).max()), n_val=cfg["n_val"], n_test=cfg["n_test"])


def run_network(cfg, link, d, dynamic):
    """One compiled call per dynamic: `learn` vmapped over r2 x seed x total, phase 1 and
    phase 2 padded to the largest sizes (`n_used`, `n2_used`). Arrays of shape (r2, seed, total)."""
    net = cfg["network"]
    r2s, keys, n_used, n2_used, shape = _grid(cfg)

    def one(r2, key, n_used, n2_used):
        out = sj.learn(
            _problem(cfg, link, d, r2), sj.DYNAMICS[dynamic](), key=key, m=net["m"], **_sizes(cfg), ridges=jnp.asarray(cfg["ridges"]),
            bias=net["bias"], n_used=n_used, n2_used=n2_used, dt=net["dt"], steps=net["steps"], saveat=sj.SaveAt(steps=3),
            stops=tuple(net["stops"]),
        )
        rho = jnp.abs(out.rho_stops[out.network.index])  # each neuron's rho at the chosen stop
        return out.network.test_mse, jnp.median(rho), jnp.mean(rho > 0.9), out.stop

    out = jax.jit(jax.vmap(one))(r2s, keys, n_used, n2_used)
    return [np.asarray(o).reshape(shape) for o in out]


def run_kernels(cfg, link, d, totals, methods):
    """Kernel baselines on exactly `learn`'s samples (the first n and n2 rows of the padded
    draws), one compiled call for a group of totals: the samples are cut to the group's
    largest (n, n2) and the smaller totals masked, vmapped over r2 x seed x total.
    Arrays of shape (r2, seed, total) per method."""
    r2s, keys, n_used, n2_used, shape = _grid(dict(cfg, totals=totals))
    n_cut, n2_cut = int(n_used.max()), int(n2_used.max())
    ridges = jnp.asarray(cfg["ridges"])

    def one(r2, key, n_used, n2_used):
        (x1, y1), (x2, y2), val, test = sj.learn_samples(_problem(cfg, link, d, r2), key=key, **_sizes(cfg))
        train = (jnp.concatenate([x1[:n_cut], x2[:n2_cut]]), jnp.concatenate([y1[:n_cut], y2[:n2_cut]]))
        mask = jnp.concatenate([jnp.arange(n_cut) < n_used, jnp.arange(n2_cut) < n2_used])
        out = {}
        for method in methods:
            if method == "rf":
                k_rf = jax.random.fold_in(key, 1)
                fit = sj.rf_ridge(k_rf, train, val, test, features=cfg["kernels"]["rf_features"], ridges=ridges, mask=mask)
            else:
                fit = sj.kernel_ridge(train, val, test, kernel=method, ridges=ridges, mask=mask)
            out[method] = fit.test_mse
        return out

    out = jax.jit(jax.vmap(one))(r2s, keys, n_used, n2_used)
    return {k: np.asarray(v).reshape(shape) for k, v in out.items()}


def run(cfg):
    rows, timing = [], {}
    totals = cfg["totals"]
    for link in cfg["links"]:
        for d in cfg["ds"]:
            t0 = time.perf_counter()
            for dynamic in cfg["network"]["dynamics"]:
                mse, rho, aligned, stop = run_network(cfg, link, d, dynamic)
                for j, r2 in enumerate(cfg["r2s"]):
                    for t, total in enumerate(totals):
                        extra = dict(rho_median=rho[j, :, t].tolist(), aligned=aligned[j, :, t].tolist(), stop=stop[j, :, t].tolist())
                        rows.append(_row(cfg, link, d, r2, total, NETWORK_LABEL[dynamic], mse[j, :, t]) | extra)
            t_net = time.perf_counter() - t0
            # Exact kernels one total at a time (padding would make every total pay for the
            # largest Cholesky); random features for the rest in one padded call.
            exact = [t for t in totals if t <= cfg["kernels"]["n_exact"]]
            groups = [([t], cfg["kernels"]["exact"]) for t in exact] + [([t for t in totals if t not in exact], ["rf"])]
            for group, methods in groups:
                if not group:
                    continue
                for method, mse in run_kernels(cfg, link, d, group, methods).items():
                    for j, r2 in enumerate(cfg["r2s"]):
                        for t, total in enumerate(group):
                            rows.append(_row(cfg, link, d, r2, total, KERNEL_LABEL[method], mse[j, :, t]))
            cell = f"{link['name']}, d={d}"
            timing[cell] = dict(network_s=t_net, kernels_s=time.perf_counter() - t0 - t_net)
            print(f"  {cell}: network {t_net:.0f} s, kernels {timing[cell]['kernels_s']:.0f} s", flush=True)
    return rows, timing


def _row(cfg, link, d, r2, total, method, mse):
    n = int(round(total * cfg["phase1_fraction"]))
    return dict(link=link["name"], d=d, r2=r2, total=total, n=n, n2=total - n, method=method, test_mse=np.asarray(mse).tolist())


def crossings(rows, cfg):
    """(link, r2, method, d) -> (first grid total whose median test MSE is within `threshold`
    of the floor, the crossing interpolated log-linearly between that total and the one
    before it); (None, None) if never reached."""
    floor, thr = cfg["noise"] ** 2, cfg["threshold"]
    curves = {}
    for row in rows:
        key = (row["link"], row["r2"], _family(row["method"]), row["d"])
        curves.setdefault(key, []).append((row["total"], float(np.median(row["test_mse"])) - floor))
    out = {}
    for key, pts in curves.items():
        pts.sort()
        hit = next((i for i, (_, e) in enumerate(pts) if e <= thr), None)
        if hit is None:
            out[key] = (None, None)
        elif hit == 0:
            out[key] = (pts[0][0], float(pts[0][0]))
        else:
            (n0, e0), (n1, e1) = pts[hit - 1], pts[hit]
            frac = (np.log(thr) - np.log(e0)) / (np.log(max(e1, 1e-9)) - np.log(e0))
            out[key] = (n1, float(np.exp(np.log(n0) + frac * (np.log(n1) - np.log(n0)))))
    return out


def _family(method):
    """Exact arc-cosine kernel ridge and its random-features version form one curve."""
    return "kernel arc-cos (RF above n_exact)" if method in (KERNEL_LABEL["arccos"], KERNEL_LABEL["rf"]) else method


def slope(ds, ns):
    """Least-squares slope of log n* against log d, or None if a crossing is missing."""
    if any(v is None for v in ns) or len(ns) < 2:
        return None
    return float(np.polyfit(np.log(ds), np.log(ns), 1)[0])


def report(rows, cfg):
    """A Markdown table: crossing per d (grid value, interpolated in brackets) and the
    log-log slope of the interpolated crossing against d."""
    cross = crossings(rows, cfg)
    ds = cfg["ds"]
    methods = sorted({k[2] for k in cross}, key=lambda m: (not m.startswith("net"), m))
    head = "| link | r2 | method | " + " | ".join(f"n* (d={d})" for d in ds) + " | slope in d |"
    lines = [head, "|" + "---|" * (len(ds) + 4)]
    for link in cfg["links"]:
        for r2 in cfg["r2s"]:
            for m in methods:
                got = [cross.get((link["name"], r2, m, d), (None, None)) for d in ds]
                s = slope(ds, [g[1] for g in got])
                cells = [f"{g} ({i:.0f})" if g is not None else f"> {max(cfg['totals'])}" for g, i in got]
                lines.append(f"| {link['name']} | {r2} | {m} | " + " | ".join(cells) + f" | {'%.2f' % s if s is not None else '-'} |")
    return "\n".join(lines), cross


# Kernels in greys and a purple, away from the dynamics' blue, vermillion and green.
KERNEL_STYLE = {
    "kernel arc-cos (RF above n_exact)": {"cmap": "Greys", "linestyle": (0, (5, 1.5)), "marker": "D"},
    KERNEL_LABEL["rbf"]: {"cmap": "Purples", "linestyle": ":", "marker": "v"},
}


def _method_order(methods):
    return sorted(methods, key=lambda m: (not m.startswith("net"), m))


def _look(method, k: int):
    """(line style, marker, k shades light to dark) of a method: a network is its dynamic's
    look (`spikejax.plot.style`), a kernel its own."""
    from spikejax.plot import style
    import matplotlib

    dyn = next((d for d, lab in NETWORK_LABEL.items() if lab == method), None)
    if dyn is not None:
        st = style.dynamic_style(dyn, marker=True)
        return st["linestyle"], st["marker"], style.shades(dyn, k)
    st = KERNEL_STYLE[method]
    cmap = matplotlib.colormaps[st["cmap"]]
    return st["linestyle"], st["marker"], [cmap(v) for v in np.linspace(0.45, 0.95, k)] if k > 1 else [cmap(0.9)]


def _setting(cfg):
    net = cfg["network"]
    return (f"r1 = {cfg['r1']:g} (theta = u), kappa = d^r2, label noise {cfg['noise']:g} (floor {cfg['noise'] ** 2:g}), "
            f"width {net['m']}, dt = {net['dt']:g}, {net['steps']} steps with validated early stop, "
            f"{cfg['seeds']} seed{'s' if cfg['seeds'] != 1 else ''} (median)")


def _curve(rows, link, r2, d, method, floor):
    """(labelled samples, median test MSE above the floor) of one method at one (link, r2, d)."""
    pts = sorted((r["total"], np.median(r["test_mse"]) - floor) for r in rows
                 if r["link"] == link and r["r2"] == r2 and r["d"] == d and _family(r["method"]) == method)
    return np.array(pts, float).T if pts else (np.array([]), np.array([]))


def plot(rows, cfg, path):
    """Small multiples: test MSE above the floor against the labelled samples, one panel per
    (link, d) row and r2 column, shared axes; every method one colour, line style and marker
    in every panel (`_look`), the legend outside the panels."""
    from spikejax.plot import style
    from matplotlib.lines import Line2D

    plt = pyplot()
    links, r2s, ds = cfg["links"], cfg["r2s"], cfg["ds"]
    floor = cfg["noise"] ** 2
    methods = _method_order({_family(r["method"]) for r in rows})
    looks = {m: _look(m, 1) for m in methods}
    panels = [(link, d) for link in links for d in ds]
    with style.style():
        fig, axes = plt.subplots(len(panels), len(r2s), figsize=(3.0 * len(r2s) + 3.4, 1.9 * len(panels) + 0.9),
                                 sharex=True, sharey=True, squeeze=False, layout="constrained")
        for i, (link, d) in enumerate(panels):
            for j, r2 in enumerate(r2s):
                ax = axes[i, j]
                for method in methods:
                    ls, mk, colours = looks[method]
                    x, y = _curve(rows, link["name"], r2, d, method, floor)
                    if x.size:
                        ax.plot(x, np.maximum(y, 1e-3), linestyle=ls, marker=mk, color=colours[-1], ms=3.5, lw=1.3)
                ax.axhline(cfg["threshold"], color="0.5", lw=0.8, zorder=0)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(f"{link['name']}, d = {d}, r2 = {r2:g}", fontsize=9)
                if i == len(panels) - 1:
                    ax.set_xlabel("labelled samples n + n2")
                if j == 0:
                    ax.set_ylabel("test MSE - floor")
        totals = cfg["totals"]
        for ax in axes.flat:
            ax.set_xticks(totals, [f"{t}" for t in totals], rotation=45)
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            style.log_ticks(ax, "y")
        handles = [Line2D([], [], linestyle=looks[m][0], marker=looks[m][1], color=looks[m][2][-1], label=m)
                   for m in methods]
        handles.append(Line2D([], [], color="0.5", lw=0.8, label=f"threshold: floor + {cfg['threshold']:g}"))
        handles.append(Line2D([], [], ls="none", label="below 0.001: drawn at 0.001"))
        links_text = "; ".join(f"{k['name']}: {k['link']} link, {k['activation']}" for k in links)
        style.legend_outside(fig, handles, [h.get_label() for h in handles], title="method")
        fig.suptitle("Network vs rotationally invariant kernels: test error against samples\n"
                     + links_text + "\n" + _setting(cfg))
        save_figure(fig, path, tight=False)


def plot_crossings(cross, cfg, path):
    """n* (samples to reach floor + threshold) against d, one panel per (link, r2); a method
    never reaching it within the grid is an open triangle above the grid's top."""
    from spikejax.plot import style
    from matplotlib.lines import Line2D

    plt = pyplot()
    links, r2s, ds = cfg["links"], cfg["r2s"], cfg["ds"]
    methods = _method_order({k[2] for k in cross})
    top = max(cfg["totals"])
    with style.style():
        fig, axes = plt.subplots(len(links), len(r2s), figsize=(3.1 * len(r2s) + 3.2, 2.8 * len(links) + 0.6),
                                 sharex=True, sharey=True, squeeze=False, layout="constrained")
        for i, link in enumerate(links):
            for j, r2 in enumerate(r2s):
                ax = axes[i, j]
                for k, method in enumerate(methods):
                    ls, mk, colours = _look(method, 1)
                    got = [cross.get((link["name"], r2, method, d), (None, None))[1] for d in ds]
                    x = np.array(ds, float)
                    y = np.array([np.nan if g is None else g for g in got], float)
                    ax.plot(x, y, linestyle=ls, marker=mk, color=colours[-1], ms=4, lw=1.2)
                    miss = ~np.isfinite(y)
                    if miss.any():  # side by side above the grid's top, so none hides another
                        ax.plot(x[miss] * 1.07 ** (k - (len(methods) - 1) / 2), np.full(miss.sum(), top * 1.45), "^",
                                color=colours[-1], mfc="white", ms=5, clip_on=False)
                ax.axhline(top, color="0.6", lw=0.8, zorder=0)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log", base=2)
                ax.set_ylim(min(cfg["totals"]) / 1.5, top * 2)
                ax.set_xticks(ds, [str(d) for d in ds])
                ax.xaxis.set_minor_formatter(plt.NullFormatter())
                yt = [t for t in cfg["totals"]]
                ax.set_yticks(yt, [str(t) for t in yt])
                ax.yaxis.set_minor_formatter(plt.NullFormatter())
                ax.set_title(f"{link['name']} ({link['link']}, {link['activation']}), r2 = {r2:g}")
                if i == len(links) - 1:
                    ax.set_xlabel("d")
                if j == 0:
                    ax.set_ylabel("n* = n + n2 to reach\nfloor + " + f"{cfg['threshold']:g}")
        handles = [Line2D([], [], linestyle=_look(m, 1)[0], marker=_look(m, 1)[1], color=_look(m, 1)[2][-1], label=m)
                   for m in methods]
        handles.append(Line2D([], [], ls="", marker="^", mfc="white", color="0.3", label=f"not reached by {top}"))
        style.legend_outside(fig, handles, [h.get_label() for h in handles])
        fig.suptitle("Samples to reach the noise floor + " + f"{cfg['threshold']:g}, interpolated between grid totals\n"
                     + _setting(cfg))
        save_figure(fig, path, tight=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", default="out/network_vs_kernels")
    parser.add_argument("--figure", default="docs/figures/network_vs_kernels.png")
    parser.add_argument("--data", default="docs/data/network_vs_kernels.json",
                        help="the run's rows, written beside OUT/results.json (committed: --replot needs no rerun)")
    parser.add_argument("--render", "--replot", dest="replot", action="store_true",
                        help="only redo the table and figures from --data")
    args = parser.parse_args(argv)
    cfg = load(args.config)
    results = os.path.join(args.out, "results.json")
    if args.replot:
        with open(args.data) as f:
            saved = json.load(f)
        rows, elapsed = saved["rows"], saved["elapsed_s"]
    else:
        t0 = time.perf_counter()
        rows, timing = run(cfg)
        elapsed = time.perf_counter() - t0
        saved = dict(config=cfg, rows=rows, timing=timing, elapsed_s=elapsed, jax=jax.__version__)
        write_json(results, saved)
        write_json(args.data, saved)
    table, _ = report(rows, cfg)
    os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
    plot(rows, cfg, args.figure)  # PNG and PDF
    plot_crossings(crossings(rows, cfg), cfg, args.figure.replace(".png", "_crossings.png"))
    print(table)
    print(f"total {elapsed:.0f} s; rows in {args.out}/results.json; figure {args.figure}")


if __name__ == "__main__":
    main()
