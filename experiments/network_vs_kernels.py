"""Network vs rotationally invariant kernels (SPEC claim 6): test error against total samples.

    python experiments/network_vs_kernels.py configs/network_vs_kernels.toml [--out DIR] [--figure PNG]

For every link, `d`, total sample size `n + n2` and dynamic, one compiled call vmaps
`spikejax.learn` over `r2` and seeds. The kernel baselines ride along with the first dynamic:
every dynamic draws the same samples from the same key, so the kernels see exactly the
network's `n + n2` training samples and the same validation and test samples. Prints the
crossing table (the first total at which the median test MSE is within `threshold` of the
noise floor) and the fitted log-log slope of the crossing against `d`; writes
`results.json` and the figure.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import load_experiment, write_json  # noqa: E402

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


def plot(rows, cfg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links, r2s, ds = cfg["links"], cfg["r2s"], cfg["ds"]
    floor = cfg["noise"] ** 2
    colours = {
        NETWORK_LABEL["normalized"]: "C0", NETWORK_LABEL["preconditioned"]: "C2", NETWORK_LABEL["spherical"]: "C3",
        _family(KERNEL_LABEL["arccos"]): "k", KERNEL_LABEL["rbf"]: "C7",
    }
    styles = dict(zip(ds, [":", "--", "-"][-len(ds):]))
    fig, axes = plt.subplots(len(links), len(r2s), figsize=(4.2 * len(r2s), 3.4 * len(links)), sharex=True, sharey=True, squeeze=False)
    for i, link in enumerate(links):
        for j, r2 in enumerate(r2s):
            ax = axes[i, j]
            for method, colour in colours.items():
                for d in ds:
                    pts = sorted(
                        (r["total"], np.median(r["test_mse"]) - floor)
                        for r in rows
                        if r["link"] == link["name"] and r["r2"] == r2 and r["d"] == d and _family(r["method"]) == method
                    )
                    if pts:
                        x, y = np.array(pts).T
                        label = method if (i, j) == (0, 0) and d == ds[-1] else None
                        ax.plot(x, np.maximum(y, 1e-3), styles[d], color=colour, marker="o", ms=2.5, lw=1.2, label=label)
            ax.axhline(cfg["threshold"], color="grey", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{link['name']} ({link['link']}, {link['activation']}), r2 = {r2}", fontsize=9)
            if i == len(links) - 1:
                ax.set_xlabel("labelled samples n + n2")
            if j == 0:
                ax.set_ylabel("test MSE - noise floor")
    axes[0, 0].legend(fontsize=6.5, loc="lower left")
    fig.suptitle(
        f"Network vs rotationally invariant kernels, r1 = 0: line style = d ({', '.join(f'{styles[d]} {d}' for d in ds)}); grey: threshold",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_crossings(cross, cfg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links, r2s, ds = cfg["links"], cfg["r2s"], cfg["ds"]
    methods = sorted({k[2] for k in cross}, key=lambda m: (not m.startswith("net"), m))
    fig, axes = plt.subplots(1, len(links), figsize=(5.5 * len(links), 4), sharey=True, squeeze=False)
    markers = dict(zip(r2s, "osD^v"))
    for i, link in enumerate(links):
        ax = axes[0, i]
        for c, m in enumerate(methods):
            for r2 in r2s:
                pts = [(d, cross[(link["name"], r2, m, d)][1]) for d in ds if cross.get((link["name"], r2, m, d), (None, None))[1]]
                if pts:
                    x, y = np.array(pts).T
                    ax.plot(x, y, "-", marker=markers[r2], color=f"C{c}", lw=1, ms=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("d")
        ax.set_title(f"{link['name']}: samples n + n2 to reach floor + {cfg['threshold']}", fontsize=9)
    axes[0, 0].set_ylabel("n* (interpolated; missing = never within the grid)")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{c}", lw=1.5, label=m) for c, m in enumerate(methods)]
    handles += [Line2D([], [], color="k", ls="", marker=markers[r2], label=f"r2 = {r2}") for r2 in r2s]
    axes[0, 0].legend(handles=handles, fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", default="out/network_vs_kernels")
    parser.add_argument("--figure", default="docs/figures/network_vs_kernels.png")
    parser.add_argument("--replot", action="store_true", help="only redo the table and figures from OUT/results.json")
    args = parser.parse_args(argv)
    cfg = load(args.config)
    results = os.path.join(args.out, "results.json")
    if args.replot:
        with open(results) as f:
            saved = json.load(f)
        rows, elapsed = saved["rows"], saved["elapsed_s"]
    else:
        t0 = time.perf_counter()
        rows, timing = run(cfg)
        elapsed = time.perf_counter() - t0
        write_json(results, dict(config=cfg, rows=rows, timing=timing, elapsed_s=elapsed, jax=jax.__version__))
    table, _ = report(rows, cfg)
    os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
    plot(rows, cfg, args.figure)
    plot_crossings(crossings(rows, cfg), cfg, args.figure.replace(".png", "_crossings.png"))
    print(table)
    print(f"total {elapsed:.0f} s; rows in {args.out}/results.json; figure {args.figure}")


if __name__ == "__main__":
    main()
