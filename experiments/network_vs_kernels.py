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
import tomllib

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # kernel ridge is solved in float64
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import spikejax as sj  # noqa: E402

NETWORK_LABEL = {"normalized": "net normalized", "preconditioned": "net preconditioned", "spherical": "net spherical"}
KERNEL_LABEL = {"arccos": "kernel arc-cos", "rbf": "kernel RBF", "rf": "ReLU random features"}


def load(path):
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    for key in ("ds", "r2s", "totals", "links", "network", "kernels", "noise", "threshold", "ridges"):
        if key not in cfg:
            raise ValueError(f"config {path!r} lacks {key!r}")
    return cfg


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
            _problem(cfg, link, d, r2), dynamic, key=key, m=net["m"], **_sizes(cfg), ridges=jnp.asarray(cfg["ridges"]),
            bias=net["bias"], n_used=n_used, n2_used=n2_used, dt=net["dt"], steps=net["steps"], record=3,
        )
        rho = jnp.abs(out.trajectory.rho[:, -1])
        return out.network.test_mse, jnp.median(rho), jnp.mean(rho > 0.9)

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
                mse, rho, aligned = run_network(cfg, link, d, dynamic)
                for j, r2 in enumerate(cfg["r2s"]):
                    for t, total in enumerate(totals):
                        rows.append(
                            _row(cfg, link, d, r2, total, NETWORK_LABEL[dynamic], mse[j, :, t])
                            | dict(rho_median=rho[j, :, t].tolist(), aligned=aligned[j, :, t].tolist())
                        )
            t_net = time.perf_counter() - t0
            exact = [t for t in totals if t <= cfg["kernels"]["n_exact"]]
            for group, methods in ((exact, cfg["kernels"]["exact"]), ([t for t in totals if t not in exact], ["rf"])):
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
    """(link, r2, method, d) -> first total whose median test MSE <= floor + threshold (None: never)."""
    level = cfg["noise"] ** 2 + cfg["threshold"]
    out = {}
    for row in sorted(rows, key=lambda r: r["total"]):
        key = (row["link"], row["r2"], _family(row["method"]), row["d"])
        if out.get(key) is None and np.median(row["test_mse"]) <= level:
            out[key] = row["total"]
        out.setdefault(key, None)
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
    cross = crossings(rows, cfg)
    ds = cfg["ds"]
    methods = sorted({k[2] for k in cross}, key=lambda m: (not m.startswith("net"), m))
    lines = [f"| link | r2 | method | " + " | ".join(f"n* (d={d})" for d in ds) + " | slope in d |", "|" + "---|" * (len(ds) + 4)]
    for link in cfg["links"]:
        for r2 in cfg["r2s"]:
            for m in methods:
                ns = [cross.get((link["name"], r2, m, d)) for d in ds]
                s = slope(ds, ns)
                cells = [f"{v}" if v is not None else f"> {max(cfg['totals'])}" for v in ns]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", default="out/network_vs_kernels")
    parser.add_argument("--figure", default="docs/figures/network_vs_kernels.png")
    args = parser.parse_args(argv)
    cfg = load(args.config)
    t0 = time.perf_counter()
    rows, timing = run(cfg)
    elapsed = time.perf_counter() - t0
    table, _ = report(rows, cfg)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dict(config=cfg, rows=rows, timing=timing, elapsed_s=elapsed, jax=jax.__version__), f, indent=1)
    os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
    plot(rows, cfg, args.figure)
    print(table)
    print(f"total {elapsed:.0f} s; rows in {args.out}/results.json; figure {args.figure}")


if __name__ == "__main__":
    main()
