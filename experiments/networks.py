"""Networks trained as a whole (issue 11): do the single-neuron claims survive interaction?

    python experiments/networks.py configs/networks_spherical.toml   # claims 1-2 with m jointly trained neurons
    python experiments/networks.py configs/networks_width.toml       # width against n* (s = 2) and the sign stall (s = 3)
    python experiments/networks.py configs/networks_joint_vs_layerwise.toml  # test error: joint GD vs layer-wise

`kind = "spherical"`: population gradient flows (reduced form, Dopri5) of the single neuron
and of a width-`m` network whose rows move together on the whole network's squared loss,
over a (kappa, r1) grid; the final best-neuron |cos_u| and the mean over neurons, median
over seeds. `kind = "width"`: empirical full-batch training of networks of several widths
over a grid of sample sizes `n`; `n*` is the smallest `n` whose median final `rho` (the
best neuron's) reaches the threshold, and the fraction of seeds that do.
`kind = "joint_vs_layerwise"`: on n labelled samples, the excess test MSE of a width-`m`
network trained as a whole by full-batch GD (population closed form of its risk) against the
layer-wise procedure (`sj.learn`: phase 1 on n/2, ridge readout on the other n/2, test error
on fresh samples); `n*` the crossing of a threshold, interpolated in log n. Writes
docs/data/<name>.json, docs/figures/<name>.png/.pdf and the `<name>` block of docs/results.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import spikejax as sj  # noqa: E402
from spikejax.plot import style  # noqa: E402

from experiments.harness import load_experiment, pyplot, replace_block, save_figure, write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DYNAMICS = {"spherical": sj.Spherical(), "normalized": sj.Normalized()}


def _network(cfg, width, second_layer=None):
    if width is None:
        return None
    return sj.Network(width=width, scaling=cfg.get("scaling", "mean_field"),
                      second_layer=second_layer or cfg.get("second_layer", "frozen"), biases=cfg.get("biases", "frozen"))


def _model(model):
    """`"single"` -> (None, None); `"8"` -> (8, None); `"8/joint"` -> (8, "joint")."""
    if model == "single":
        return None, None
    width, _, second = model.partition("/")
    return int(width), second or None


def _metric(ys, name, width):
    """Final |metric| (the best neuron's for a network), and the mean over neurons."""
    best = jnp.abs(ys[name][..., -1])
    mean = best if width is None else ys[f"{name}_mean"][..., -1]
    return best, mean


def spherical(cfg):
    """(model, dynamic) -> final |cos_u| and |rho| (best, mean), shape (kappa, r1, seed)."""
    jax.config.update("jax_enable_x64", True)  # flows solved to rtol 1e-6 and checked at 1e-8
    kap, r1s = np.asarray(cfg["kappas"], float), np.asarray(cfg["r1s"], float)
    K, R, S = np.meshgrid(np.arange(len(kap)), np.arange(len(r1s)), np.arange(cfg["seeds"]), indexing="ij")
    keys = jax.random.split(jax.random.key(cfg["seed"]), cfg["seeds"])[S.ravel()]
    out = {}
    for model in cfg["models"]:
        width, second = _model(model)
        for dyn in cfg["dynamics"]:
            def one(kappa, r1, key, *, rtol):
                p = sj.make_problem(cfg["d"], key=jax.random.key(cfg["seed"] + 1), kappa=kappa, r1=r1,
                                    link=cfg["link"], activation=cfg["activation"], noise=0.0)
                tr = sj.simulate(p, DYNAMICS[dyn], key=key, dt=cfg["dt"], steps=cfg["steps"], reduced=True,
                                 solver=sj.Dopri5(rtol=rtol, atol=rtol * 1e-3),
                                 network=_network(cfg, width, second),
                                 saveat=sj.SaveAt(steps=4))
                return (*_metric(tr.ys, "cos_u", width), *_metric(tr.ys, "rho", width), tr.status)

            args = (jnp.asarray(kap[K.ravel()]), jnp.asarray(r1s[R.ravel()]), keys)
            t0 = time.time()
            res = [np.asarray(x).reshape(K.shape)
                   for x in jax.jit(jax.vmap(functools.partial(one, rtol=cfg["rtol"])))(*args)]
            check = [np.asarray(x).reshape(K.shape)
                     for x in jax.jit(jax.vmap(functools.partial(one, rtol=cfg["rtol"] / 100)))(*args)]
            change = float(max(np.max(np.abs(res[i] - check[i])) for i in range(4)))
            out[f"{model}/{dyn}"] = dict(cos_u=res[0], cos_u_mean=res[1], rho=res[2], rho_mean=res[3],
                                         not_ok=int(np.sum(res[4] != 0)), step_check=change)
            print(f"{model:>6} {dyn:>10}: {time.time() - t0:.0f} s, median final |cos_u| by kappa (r1 = {r1s[0]}):",
                  np.round(np.median(res[0][:, 0], -1), 3), "step check", f"{change:.1e}", flush=True)
    return out


def width(cfg):
    """(link, width) -> final rho (best neuron) of shape (n, seed): one `sj.sweep` a link
    (the network keys of the sweep schema; one compiled call per width and n bucket)."""
    ns = {lk["link"]: np.asarray(lk["ns"]) for lk in cfg["links"]}
    out = {}
    for lk in cfg["links"]:
        t0 = time.time()
        ds = sj.sweep(dict(seeds=cfg["seeds"], d=cfg["d"], r2=cfg["r2"], r1=cfg["r1"], noise=cfg["noise"],
                           link=lk["link"], activation=lk["activation"], dynamic="normalized", source="empirical",
                           n=list(lk["ns"]), dt=cfg["dt"], steps=cfg["steps"], record=4, network=True,
                           width=list(cfg["widths"]), scaling=cfg.get("scaling", "mean_field"),
                           second_layer=cfg.get("second_layer", "frozen"), biases=cfg.get("biases", "frozen")),
                      progress=False)
        for m in cfg["widths"]:
            sel = ds.sel(width=m) if "width" in ds.dims else ds
            da = sel["rho"] if "n" in sel["rho"].dims else sel["rho"].expand_dims("n")
            rho = np.asarray(da.isel(step=-1).transpose("n", "seed"))
            out[f"{lk['link']}/{m}"] = dict(rho=rho, rho0=np.asarray(da.isel(step=0).transpose("n", "seed")),
                                            not_ok=int(np.sum(np.asarray(sel["status"]) != "ok")))
            print(f"{lk['link']} m = {m:>3}: median final rho by n:", np.round(np.median(rho, -1), 2), flush=True)
        print(f"{lk['link']}: {time.time() - t0:.0f} s", flush=True)
    return out, ns


def width_step_check(cfg):
    """The width grid rerun at dt / 2 over the same horizon, for each link's `check_widths`:
    (link, width) -> final rho (n, seed) and the count of runs not ok. Keys depend on the
    seed alone, so every run starts from the same rows and samples as at dt."""
    out = {}
    for lk in cfg["links"]:
        if lk.get("check_widths"):
            sub = dict(cfg, dt=cfg["dt"] / 2, steps=2 * cfg["steps"], widths=list(lk["check_widths"]), links=[lk])
            out.update(width(sub)[0])
    return out


def n_star(rho, ns, threshold):
    """The smallest n whose median final rho reaches `threshold` (None: none does)."""
    ok = np.median(rho, -1) >= threshold
    return int(ns[np.argmax(ok)]) if ok.any() else None


def _jl_problem(cfg, cell, r2):
    return sj.make_problem(cfg["d"], key=jax.random.key(cfg["seed"] + 1), r2=r2, r1=cell["r1"], link=cell["link"],
                           activation=cell["activation"], noise=cfg["noise"])


def _jl_grid(cfg):
    ns = np.asarray(cfg["ns"])
    S, N = np.meshgrid(np.arange(cfg["seeds"]), np.arange(len(ns)), indexing="ij")
    keys = jax.random.split(jax.random.key(cfg["seed"]), cfg["seeds"])[S.ravel()]
    return ns, keys, jnp.asarray(ns[N.ravel()]), S.shape


def joint_excess(cfg, cell, r2):
    """Excess test MSE `2 (R - tau^2 / 2)` (population closed form: the test error on fresh
    samples in expectation) of the jointly trained network after full-batch GD on n samples,
    and the run's status; arrays of shape (seed, n). One compiled call, n padded (`n_used`)."""
    ns, keys, nus, shape = _jl_grid(cfg)
    net = sj.Network(width=cfg["width"], scaling=cfg["scaling"], second_layer="joint", biases=cfg["biases"],
                     bias_init=cfg["bias_init"])

    def one(key, nu):
        tr = sj.simulate(_jl_problem(cfg, cell, r2), DYNAMICS[cfg["dynamic"]], key=key, dt=cfg["dt"], steps=cfg["steps"],
                         network=net, source=sj.Empirical(int(ns.max()), nu), saveat=sj.SaveAt(steps=3))
        return 2 * tr.ys["excess_risk"][..., -1], tr.status

    e, st = jax.jit(jax.vmap(one))(keys, nus)
    return np.asarray(e).reshape(shape), np.asarray(st).reshape(shape)


def layerwise_excess(cfg, cell, r2):
    """Excess test MSE (`test_mse - tau^2`, on `n_test` fresh samples) of today's layer-wise
    procedure (`sj.learn`: m independent neurons on n/2 samples, frozen second layer, then a
    ridge readout with fresh biases on the other n/2), and each configuration's worst phase-1
    status (max code over neurons); arrays of shape (seed, n). One ridge strength and no
    stopping-time choice, so the validation samples choose nothing: the procedure sees n."""
    ns, keys, nus, shape = _jl_grid(cfg)
    half = int(ns.max()) // 2

    def one(key, nu):
        out = sj.learn(_jl_problem(cfg, cell, r2), DYNAMICS[cfg["dynamic"]], key=key, m=cfg["width"], n=half, n2=half,
                       n_val=cfg["n_val"], n_test=cfg["n_test"], ridges=jnp.asarray([cfg["ridge"]]),
                       bias=cfg["readout_bias"], n_used=nu // 2, n2_used=nu // 2, dt=cfg["dt"], steps=cfg["steps"],
                       saveat=sj.SaveAt(steps=3))
        return out.network.test_mse - out.network.noise_floor, jnp.max(out.trajectory.status)

    e, st = jax.jit(jax.vmap(one))(keys, nus)
    return np.asarray(e).reshape(shape), np.asarray(st).reshape(shape)


def layerwise_step_check(cfg):
    """The layer-wise procedure of the cells named in `check_cells` (`"s3/r2=1"`) rerun at
    dt / 2 over the same horizon (same seeds, samples and starts): cell -> excess (seed, n)
    and statuses."""
    out = {}
    for cell in cfg["cells"]:
        for r2 in cfg["r2s"]:
            key = f"s{cell['s']}/r2={r2:g}"
            if key in cfg.get("check_cells", ()):
                e, st = layerwise_excess(dict(cfg, dt=cfg["dt"] / 2, steps=2 * cfg["steps"]), cell, r2)
                out[key] = dict(layerwise=e, layerwise_status=st)
                print(f"{key} at dt / 2: median excess by n", np.round(np.median(e, 0), 3), _status_counts(st), flush=True)
    return out


def n_star_interp(ns, err, threshold):
    """The first n at which `err` (one value per n, e.g. the median over seeds) falls below
    `threshold`, interpolated linearly in (log n, log err) between that grid point and the
    one before it. `ns[0]` if the first point is already below; NaN if none is."""
    ns, err = np.asarray(ns, float), np.asarray(err, float)
    below = err < threshold
    if not below.any():
        return float("nan")
    i = int(np.argmax(below))
    if i == 0:
        return float(ns[0])
    le0, le1 = np.log(max(err[i - 1], 1e-300)), np.log(max(err[i], 1e-300))
    t = (le0 - np.log(threshold)) / (le0 - le1)
    return float(np.exp(np.log(ns[i - 1]) + t * (np.log(ns[i]) - np.log(ns[i - 1]))))


def joint_vs_layerwise(cfg):
    """(s, r2) cell -> excess test MSE of both procedures and statuses, shape (seed, n)."""
    out = {}
    for cell in cfg["cells"]:
        for r2 in cfg["r2s"]:
            t0 = time.time()
            ej, sj_ = joint_excess(cfg, cell, r2)
            el, sl = layerwise_excess(cfg, cell, r2)
            key = f"s{cell['s']}/r2={r2:g}"
            out[key] = dict(joint=ej, layerwise=el, joint_status=sj_, layerwise_status=sl, seconds=time.time() - t0)
            print(f"{key}: {time.time() - t0:.0f} s; median excess by n: joint", np.round(np.median(ej, 0), 3),
                  "layer-wise", np.round(np.median(el, 0), 3), flush=True)
    return out


def _status_counts(codes):
    codes = np.asarray(codes).ravel()
    return ", ".join(f"{sj.STATUS[c] if hasattr(sj, 'STATUS') else c} {int(np.sum(codes == c))}"
                     for c in np.unique(codes))


def _jl_report(cfg, out, check=None):
    name, ns, thr = cfg["name"], np.asarray(cfg["ns"]), cfg["threshold"]
    plt = pyplot()
    cells, r2s = cfg["cells"], cfg["r2s"]
    styles = {"joint": dict(color=style.PALETTE[0], linestyle="-", marker="o", label=f"joint GD (m = {cfg['width']})"),
              "layerwise": dict(color=style.PALETTE[1], linestyle="--", marker="s", markerfacecolor="none",
                                label=f"layer-wise (m = {cfg['width']}, n/2 + n/2)")}
    with style.style():
        fig, axes = plt.subplots(len(cells), len(r2s), figsize=(3.0 * len(r2s) + 2.2, 2.7 * len(cells)), sharex=True,
                                 sharey=True, squeeze=False)
        for i, cell in enumerate(cells):
            for j, r2 in enumerate(r2s):
                ax, r = axes[i, j], out[f"s{cell['s']}/r2={r2:g}"]
                for which, st in styles.items():
                    e = np.asarray(r[which], float)
                    ax.plot(ns, np.median(e, 0), **st)
                    ax.fill_between(ns, np.clip(np.min(e, 0), 1e-3, None), np.max(e, 0), color=st["color"], alpha=0.15,
                                    linewidth=0)
                ax.axhline(thr, color="0.4", linewidth=0.8, linestyle=":")
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_xticks(ns, [str(n) for n in ns], rotation=45)
                ax.minorticks_off()
                ax.set_title(f"s = {cell['s']} ({cell['link']}, {cell['activation']}), r2 = {r2:g}", fontsize=8)
                if i == len(cells) - 1:
                    ax.set_xlabel("n (labelled samples)")
            axes[i, 0].set_ylabel("excess test MSE")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles.append(plt.Line2D([], [], color="0.4", linewidth=0.8, linestyle=":"))
        labels.append(f"threshold {thr:g}")
        fig.suptitle(f"Joint vs layer-wise training: d = {cfg['d']}, noise {cfg['noise']}, median and range over "
                     f"{cfg['seeds']} seeds", fontsize=9)
        fig.tight_layout(rect=(0, 0, 0.8, 1))
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.8, 0.5), fontsize=7, frameon=False)
        save_figure(fig, os.path.join(ROOT, "docs", "figures", f"{name}.png"), tight=False)
    rows = []
    for cell in cells:
        for r2 in r2s:
            r = out[f"s{cell['s']}/r2={r2:g}"]
            nj = n_star_interp(ns, np.median(np.asarray(r["joint"], float), 0), thr)
            nl = n_star_interp(ns, np.median(np.asarray(r["layerwise"], float), 0), thr)
            fmt = lambda x: f"> {ns[-1]}" if np.isnan(x) else (f"<= {ns[0]}" if x == ns[0] else f"{x:.0f}")
            ratio = "-" if np.isnan(nj) or np.isnan(nl) else f"{nl / nj:.2f}"
            c = (check or {}).get(f"s{cell['s']}/r2={r2:g}")
            half = (f"{fmt(n_star_interp(ns, np.median(np.asarray(c['layerwise'], float), 0), thr))} | "
                    f"{_status_counts(c['layerwise_status'])}") if c else "- | -"
            rows.append(f"| {cell['s']} ({cell['link']}, {cell['activation']}, r1 = {cell['r1']}) | {r2:g} | {fmt(nj)} | "
                        f"{fmt(nl)} | {ratio} | {np.median(np.asarray(r['joint'], float), 0)[-1]:.3f} | "
                        f"{np.median(np.asarray(r['layerwise'], float), 0)[-1]:.3f} | {_status_counts(r['joint_status'])} | "
                        f"{_status_counts(r['layerwise_status'])} | {half} |")
    return "\n".join([
        f"![joint vs layer-wise](figures/{name}.png)", "",
        f"d = {cfg['d']}, kappa = d^r2, noise tau = {cfg['noise']}, {cfg['seeds']} seeds, n in {', '.join(map(str, ns))}. "
        f"**Joint**: width {cfg['width']}, {cfg['scaling']} scaling, second layer trained jointly, {cfg['biases']} biases "
        f"from Unif[-{cfg['bias_init']:g}, {cfg['bias_init']:g}], rows by the {cfg['dynamic']} dynamic, full-batch GD "
        f"(Euler, dt = {cfg['dt']}, {cfg['steps']} steps) on the squared loss of all n samples; test error = 2 x the "
        "population excess risk (closed form; for ReLU cut at Hermite degree 32). **Layer-wise** (`sj.learn`): "
        f"{cfg['width']} independent neurons (frozen a = 1, {cfg['dynamic']}, same dt and steps) on n/2 samples, then "
        f"fresh biases Unif[-{cfg['readout_bias']:g}, {cfg['readout_bias']:g}] and a ridge readout (ridge "
        f"{cfg['ridge']:g}, fixed: validation chooses nothing) on the other n/2; test MSE on {cfg['n_test']} fresh "
        f"samples minus tau^2. n* = the first n whose median excess test MSE is below {thr:g} (E[y^2] = "
        f"{1 + cfg['noise'] ** 2:g}), interpolated linearly in (log n, log error) from the grid point before. "
        "Status: final status of the joint run; for layer-wise, the worst neuron's phase-1 status per run.", "",
        f"Step check (the cells listed): the layer-wise procedure rerun at dt = {cfg['dt'] / 2:g} "
        f"({2 * cfg['steps']} steps, the same horizon) from the same seeds.", "",
        "| s (link, activation) | r2 | n* joint | n* layer-wise | ratio LW / joint | joint at n max | "
        "layer-wise at n max | joint status | layer-wise status | n* layer-wise at dt / 2 | layer-wise status at dt / 2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])


def _label(cfg, model):
    width, second = _model(model)
    return f"{width} ({second or cfg.get('second_layer', 'frozen')} a)"


def _spherical_report(cfg, out):
    name, kap, r1s = cfg["name"], np.asarray(cfg["kappas"]), np.asarray(cfg["r1s"])
    plt = pyplot()
    with style.style():
        fig, axes = plt.subplots(1, len(r1s), figsize=(3.3 * len(r1s) + 1.8, 3.2), sharey=True, squeeze=False)
        for j, r1 in enumerate(r1s):
            ax = axes[0, j]
            for i, model in enumerate(cfg["models"]):
                for dyn in cfg["dynamics"]:
                    r = out[f"{model}/{dyn}"]
                    color = style.dynamic_style(dyn)["color"]
                    if model == "single":
                        ax.plot(kap, np.median(r["cos_u"][:, j], -1), label=f"single neuron, {dyn}", color=color,
                                linestyle="-", marker="o")
                        continue
                    ax.plot(kap, np.median(r["cos_u"][:, j], -1), label=f"m = {_label(cfg, model)}, best, {dyn}",
                            color=color, linestyle="--", marker="s", markerfacecolor="none")
                    ax.plot(kap, np.median(r["cos_u_mean"][:, j], -1), label=f"m = {_label(cfg, model)}, mean, {dyn}",
                            color=color, linestyle=":", marker="^")
            ax.set_xscale("log")
            style.log_ticks(ax, "x")
            ax.set_xlabel("kappa")
            ax.set_title(f"r1 = {r1:g}")
            ax.set_ylim(0, 1.05)
        axes[0, 0].set_ylabel("final |cos_u| (median over seeds)")
        axes[0, 0].text(0.03, 0.03, f"T = {cfg['dt'] * cfg['steps']:g}", transform=axes[0, 0].transAxes, fontsize=7)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.suptitle(f"Spherical failure: single neuron vs m jointly trained neurons (population flow, d = {cfg['d']}, "
                     f"{cfg['link']}, {cfg['activation']})", fontsize=9)
        fig.tight_layout(rect=(0, 0, 0.72, 1))
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.72, 0.5), fontsize=7, frameon=False)
        save_figure(fig, os.path.join(ROOT, "docs", "figures", f"{name}.png"), tight=False)
    rows = []
    for key, r in out.items():
        model, dyn = key.rsplit("/", 1)
        med = np.median(r["cos_u"], -1)
        i, j = np.unravel_index(np.argmin(med), med.shape)
        label = "single neuron" if model == "single" else f"m = {_label(cfg, model)}"
        rows.append(f"| {label} | {dyn} | {med.min():.3f} | ({kap[i]:g}, {r1s[j]:g}) | "
                    f"{np.median(r['cos_u_mean'], -1).min():.3f} | {np.median(r['rho'], -1).min():.3f} | "
                    f"{r['step_check']:.1e} | {r['not_ok']} |")
    return "\n".join([
        f"![networks spherical failure](figures/{name}.png)", "",
        f"Population gradient flows (reduced form: m + 2 coordinates) solved by Dopri5 to rtol {cfg['rtol']:g}, "
        f"T = {cfg['dt'] * cfg['steps']:g}, d = {cfg['d']}, link {cfg['link']}, activation {cfg['activation']}, "
        f"squared loss of the whole network, {cfg['seeds']} seeds (median). The network: "
        f"{cfg.get('scaling', 'mean_field')} scaling (a_j(0) = 1/m), second layer frozen or trained jointly (`/joint`), "
        f"{cfg.get('biases', 'frozen')} biases (b = 0): with a frozen second layer and every row equal it is the "
        "single neuron. Step check: the grid rerun at rtol / 100, the "
        "largest change of any final |cos_u| or |rho|.", "",
        "| model | dynamic | min median abs cos_u (best neuron) | at (kappa, r1) | min median abs cos_u (mean over "
        "neurons) | min median abs rho | step check | runs not ok |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])


def _width_report(cfg, out, ns, check=None):
    name = cfg["name"]
    thr = cfg["threshold"]
    plt = pyplot()
    links = [lk["link"] for lk in cfg["links"]]
    with style.style():
        fig, axes = plt.subplots(1, len(links), figsize=(3.6 * len(links) + 1.6, 3.2), squeeze=False)
        for j, lk in enumerate(links):
            ax = axes[0, j]
            for i, m in enumerate(cfg["widths"]):
                frac = np.mean(out[f"{lk}/{m}"]["rho"] >= thr, -1)
                ax.plot(ns[lk], frac, label=f"m = {m}", color=style.PALETTE[i % len(style.PALETTE)],
                        marker="os^Dv"[i % 5], linestyle=["-", "--", "-.", ":"][i % 4])
            ax.set_xscale("log", base=2)
            ax.set_xticks(ns[lk], [str(n) for n in ns[lk]])
            ax.minorticks_off()
            ax.set_xlabel("n (labelled samples)")
            act = {x["link"]: x["activation"] for x in cfg["links"]}[lk]
            ax.set_title(f"{lk} link, {act} activation")
            ax.set_ylim(-0.05, 1.05)
        axes[0, 0].set_ylabel(f"seeds with best |rho| >= {thr:g}")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.suptitle(f"Width against samples: empirical GD, normalized rows, d = {cfg['d']}, r2 = {cfg['r2']}, "
                     f"r1 = {cfg['r1']}", fontsize=9)
        fig.tight_layout(rect=(0, 0, 0.84, 1))
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.84, 0.5), fontsize=8, frameon=False)
        save_figure(fig, os.path.join(ROOT, "docs", "figures", f"{name}.png"), tight=False)
    rows = []
    for lk in cfg["links"]:
        for m in cfg["widths"]:
            r = out[f"{lk['link']}/{m}"]
            ns_ = ns[lk["link"]]
            star = n_star(r["rho"], ns_, thr)
            fr = " ".join(f"{x:.2f}" for x in np.mean(r["rho"] >= thr, -1))
            fmt = lambda x: x if x else f"> {ns_[-1]}"
            c = (check or {}).get(f"{lk['link']}/{m}")
            half = (f"{fmt(n_star(c['rho'], ns_, thr))} | {np.max(np.abs(np.asarray(c['rho']) - r['rho'])):.3f} | "
                    f"{c['not_ok']}") if c else "- | - | -"
            rows.append(f"| {lk['link']} ({lk['activation']}) | {m} | {fmt(star)} | {fr} | "
                        f"{np.median(r['rho0']):.2f} | {r['not_ok']} | {half} |")
    return "\n".join([
        f"![networks width](figures/{name}.png)", "",
        f"Full-batch gradient descent on n fixed samples (Euler, dt = {cfg['dt']}, {cfg['steps']} steps), d = {cfg['d']}, "
        f"kappa = d^{cfg['r2']}, r1 = {cfg['r1']}, noise {cfg['noise']}, {cfg['seeds']} seeds; the network: "
        f"{cfg.get('scaling', 'mean_field')} scaling, {cfg.get('second_layer', 'frozen')} second layer, rows moved "
        f"by the normalized dynamic on the whole network's squared loss. `rho` is the best neuron's |rho|; n* the "
        f"smallest n of the grid whose median reaches {thr:g}. n grid: "
        + "; ".join(f"{lk['link']}: {', '.join(map(str, lk['ns']))}" for lk in cfg["links"]) + ".", "",
        f"Step check: the grid rerun at dt = {cfg['dt'] / 2:g} ({2 * cfg['steps']} steps, the same horizon) from "
        "the same rows and samples (the keys depend on the seed alone), for the widths listed; `max |Delta rho|` is "
        "the largest change of any run's final rho. Runs not ok: of "
        f"{cfg['seeds']} seeds x the n grid, the status (`oscillating`: the last two steps reverse each other by "
        "more than 0.1% of ||w||).", "",
        "| link | width m | n* | fraction of seeds >= threshold, by n | median initial rho | runs not ok | "
        "n* at dt / 2 | max abs Delta rho | runs not ok at dt / 2 |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--no-docs", action="store_true", help="print only; write no data, figure or results block")
    ap.add_argument("--render", action="store_true", help="redraw the figure and block from docs/data (no runs)")
    ap.add_argument("--step-check", action="store_true",
                    help="width: rerun the grid at dt / 2 (each link's check_widths), keep the dt results from docs/data")
    args = ap.parse_args(argv)
    cfg = load_experiment(args.config, scale=None, kinds=("spherical", "width", "joint_vs_layerwise"))
    t0 = time.time()
    if args.render or args.step_check:
        import json

        path = os.path.join(ROOT, "docs", "data", f"{cfg['name']}.json")
        with open(path) as f:
            saved = json.load(f)
        arrays = lambda res: {k: {m: (np.asarray(v) if isinstance(v, list) else v) for m, v in r.items()}
                              for k, r in res.items()}
        out = arrays(saved["results"])
        ns = {lk["link"]: np.asarray(lk["ns"]) for lk in cfg.get("links", [])}
        if args.step_check:
            if cfg["kind"] == "joint_vs_layerwise":
                jax.config.update("jax_enable_x64", True)  # as the main run
            saved["step_check"] = width_step_check(cfg) if cfg["kind"] == "width" else layerwise_step_check(cfg)
            saved["config"] = cfg
            print(f"step check {time.time() - t0:.0f} s")
            write_json(path, saved)
        check = arrays(saved.get("step_check", {}))
        text = (_spherical_report(cfg, out) if cfg["kind"] == "spherical" else _jl_report(cfg, out, check)
                if cfg["kind"] == "joint_vs_layerwise" else _width_report(cfg, out, ns, check))
        body = open(os.path.join(ROOT, "docs", "results.md")).read()
        old = body.split(f"<!-- BEGIN {cfg['name']} -->")[1] if f"<!-- BEGIN {cfg['name']} -->" in body else ""
        run_line = [ln for ln in old.split(f"<!-- END {cfg['name']} -->")[0].splitlines() if ln.startswith("Run:")]
        run_line = run_line or [f"Run: `python experiments/networks.py {args.config}` (rendered from docs/data)."]
        replace_block(os.path.join(ROOT, "docs", "results.md"), cfg["name"], text + "\n\n" + "\n".join(run_line))
        return
    if cfg["kind"] == "spherical":
        out = spherical(cfg)
        data = {"config": cfg, "results": out}
        report = lambda: _spherical_report(cfg, out)
    elif cfg["kind"] == "joint_vs_layerwise":
        jax.config.update("jax_enable_x64", True)  # ridge readout in float64, as network_vs_kernels
        out = joint_vs_layerwise(cfg)
        ns = np.asarray(cfg["ns"])
        data = {"config": cfg, "results": out, "n_star": {
            k: {w: n_star_interp(ns, np.median(v[w], 0), cfg["threshold"]) for w in ("joint", "layerwise")}
            for k, v in out.items()}}
        report = lambda: _jl_report(cfg, out)
    else:
        out, ns = width(cfg)
        data = {"config": cfg, "results": out, "n_star": {k: n_star(v["rho"], ns[k.split("/")[0]], cfg["threshold"])
                                                           for k, v in out.items()}}
        report = lambda: _width_report(cfg, out, ns)
    print(f"total {time.time() - t0:.0f} s")
    if args.no_docs:
        return
    write_json(os.path.join(ROOT, "docs", "data", f"{cfg['name']}.json"), data)
    text = report() + f"\n\nRun: `python experiments/networks.py {args.config}` ({time.time() - t0:.0f} s on the 2-core CPU)."
    replace_block(os.path.join(ROOT, "docs", "results.md"), cfg["name"], text)


if __name__ == "__main__":
    main()
