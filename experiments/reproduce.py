"""`make reproduce`: the experiments of SPEC claims 1-5 from `configs/complexity_*.toml`.

Each config is data only (read with `tomllib`): an `[experiment]` table with a `kind`
and its parameters, and `[scale.<name>]` tables whose keys override the experiment's at
that scale. Every experiment writes `docs/data/<name>.json` and figures under
`docs/figures/`, each atomically (temp file, then `os.replace`), and regenerates its
table between `<!-- BEGIN <name> -->` / `<!-- END <name> -->` in `docs/results.md`;
the prose around the tables is written by hand.

    python experiments/reproduce.py [--scale small|large] [--only NAME ...] [--docs DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import fmt, json_default, load_experiment, pyplot as _pyplot, replace_block, save_figure, seed_keys, write_file  # noqa: E402
from spikejax import (  # noqa: E402
    DYNAMICS,
    Dopri5,
    Normalized,
    SaveAt,
    bootstrap_exponent,
    horizon_check,
    make_problem,
    prepare,
    search_n,
    simulate,
)
from spikejax import rho as rho_of  # noqa: E402

import at_scale  # noqa: E402  (issue 14: full-batch n* and the summary table)
from window import predict_n, windowed_search  # noqa: E402  (full-batch n* on a window of the grid)
import paper  # noqa: E402  (issue 14: the paper's experiments 1-2, non-Gaussian claims 1-2)
from passage import passage_row, passage_units, render_passage, run_passage  # noqa: E402  (one-pass first passages)
from theory import hypothesis_eta, init_exponent  # noqa: E402

KINDS = ("scaling", "init_alignment", "preconditioning", "spherical_failure", "passage", "fullbatch") + paper.KINDS


def load_config(path, scale: str = "small") -> dict:
    """An experiment of this script: `harness.load_experiment` with its kinds.

    `only_scales = [...]` in `[experiment]` marks a config committed at those scales only: at any
    other scale it comes back with `skip = True` (so `make reproduce` at small scale never
    overwrites numbers committed at `large`). A passage config with an `[experiment.grid]` table
    (lists of `s`, `r2`, `r1`, `dynamic`) and `[experiment.by_s.<s>]` tables (link, activation,
    loss, batch, seeds per s) has its targets built as their product, with `d_by_s` giving each
    target's dimensions."""
    from spikejax import read_toml

    raw = read_toml(path)
    only = raw.get("experiment", {}).get("only_scales")
    if only is not None and scale not in only:
        return dict(name=Path(path).stem, kind=raw["experiment"].get("kind"), skip=True, only_scales=list(only))
    cfg = load_experiment(path, scale, kinds=KINDS)
    if "grid" in cfg:
        cfg["targets"], cfg["d"] = grid_targets(cfg)
    return cfg


def grid_targets(cfg) -> tuple[list, dict]:
    """The targets of `cfg['grid']` (product of its lists, in the order s, r1, r2, dynamic) and their d."""
    import itertools

    g, by_s, d_by_s = cfg["grid"], cfg["by_s"], cfg["d_by_s"]
    targets, ds = [], {}
    for s, r1, r2, dyn in itertools.product(g["s"], g["r1"], g["r2"], g["dynamic"]):
        if str(s) not in by_s or str(s) not in d_by_s:
            raise ValueError(f"s={s!r} is not allowed; [experiment.by_s] and d_by_s must both give s = {s}")
        name = f"s{s}_r1_{r1:g}_r2_{r2:g}_{dyn}"
        targets.append(dict(by_s[str(s)], name=name, s=s, r1=r1, r2=r2, dynamic=dyn))
        ds[name] = list(d_by_s[str(s)])
    return targets, ds


# ---------------------------------------------------------------- claim 4: n*(d) and eta


def _n_grid(d, target):
    lo, hi = target["log2_n_over_d"]
    g = np.round(d * 2.0 ** np.arange(lo, hi + 1e-9, target.get("log2_step", 0.5))).astype(int)
    if g[0] < 2 or np.any(np.diff(g) <= 0):
        raise ValueError(f"log2_n_over_d={target['log2_n_over_d']!r} is not allowed at d={d}; "
                         "the grid must start at n >= 2 and be strictly increasing")
    return g


_MEMO: dict = {}


def _keys(target, p, dynamic, d):
    """The seed keys at `d`: `seeds` keys split from `key(10_000 + d)` (the committed scaling
    runs' draw), or with `right_sign_seeds = true` only right-sign ones (`harness.seed_keys`)."""
    if not target.get("right_sign_seeds"):
        return jax.random.split(jax.random.key(10_000 + d), target["seeds"])
    return seed_keys(p, DYNAMICS[dynamic](), d, target["seeds"], True)


def measure_point(target, d, r1, r2, dynamic, noise, n_unlabelled=0, steps=None, dt=None, n_pred=None,
                  threshold=0.9):
    """One `search_n` (all `n` and seeds of one configuration), memoised within the process.
    With a target's `window` (a number of grid points), only that window of the grid runs, around
    `n_pred` (`experiments/window.py`); the memo then also holds the windows run."""
    steps = steps or target["steps"]
    dt = dt or target["dt"]
    key = _point_key(target, d, r1, r2, dynamic, noise, n_unlabelled, steps, dt)
    if key not in _MEMO:
        p = make_problem(d, key=jax.random.key(d), r2=r2, r1=r1, link=target["link"],
                         activation=target["activation"], noise=noise)
        keys = _keys(target, p, dynamic, d)

        def run(points, n_draw):
            return search_n(p, DYNAMICS[dynamic](), n_grid=points, keys=keys, dt=dt, steps=steps,
                            n_unlabelled=n_unlabelled, n_draw=n_draw)

        if "window" in target:
            _MEMO[key], _MEMO[("windows",) + key] = windowed_search(run, _n_grid(d, target), n_pred,
                                                                    target["window"], threshold)
        else:
            _MEMO[key] = run(_n_grid(d, target), None)
    return _MEMO[key]


def _point_key(target, d, r1, r2, dynamic, noise, n_unlabelled, steps, dt):
    """`measure_point`'s memo key; `("windows",) + key` holds the windows a windowed search ran."""
    return (target["link"], target["activation"], target["seeds"], tuple(target["log2_n_over_d"]),
            target.get("log2_step", 0.5), d, r1, r2, dynamic, noise, n_unlabelled, steps, dt)


HORIZON_RULES = ("largest_d", "none")


def horizon_rule(cfg) -> str:
    """The config's `horizon_check` rule: `"largest_d"` (default) checks every
    (s, r1, r2, dynamic) cell at its largest d, `"none"` checks nothing."""
    rule = cfg.get("horizon_check", "largest_d")
    if rule not in HORIZON_RULES:
        raise ValueError(f"horizon_check={rule!r} is not allowed in {cfg['name']}; choose one of "
                         f"{', '.join(map(repr, HORIZON_RULES))}")
    if "horizon_checks" in cfg:
        raise ValueError(f"horizon_checks is not allowed in {cfg['name']}: the hand-listed checks were replaced by "
                         "the per-cell rule horizon_check = \"largest_d\"")
    return rule


def steps_at(target, d, ds) -> int:
    """The step count at `d`: `steps` at the smallest `d`, times `(d / d_0)^steps_exponent` (the
    escape time from `rho0 ~ d^-1/2` grows as `d^{(s-2)/2}`: exponent 0.5 at s = 3, 1 at s = 4)."""
    return int(np.ceil(target["steps"] * (d / min(ds)) ** target.get("steps_exponent", 0.0)))


def check_point(target, d, r1, r2, dynamic, noise, threshold, n_unlabelled=0, base_n=None, steps=None):
    """`horizon_check` of one cell at one `d`, bracketed around the memoised base search
    (the same samples as the base; see `bracket_window`), memoised like `measure_point`.
    `base_n`: the base n* on rho if known (a committed run, `--checks-only`): not rerun."""
    steps = steps or target["steps"]
    key = ("horizon", target["link"], target["activation"], target["seeds"], tuple(target["log2_n_over_d"]),
           target.get("log2_step", 0.5), d, r1, r2, dynamic, noise, n_unlabelled, threshold, steps)
    if key not in _MEMO:
        base = base_n if base_n is not None else measure_point(target, d, r1, r2, dynamic, noise,
                                                               n_unlabelled=n_unlabelled, steps=steps)
        p = make_problem(d, key=jax.random.key(d), r2=r2, r1=r1, link=target["link"],
                         activation=target["activation"], noise=noise)
        keys = _keys(target, p, dynamic, d)
        t0, c0 = time.time(), time.process_time()
        chk = horizon_check(p, DYNAMICS[dynamic](), n_grid=_n_grid(d, target), keys=keys, dt=target["dt"],
                            steps=steps, threshold=threshold, base=base, bracket=True,
                            n_unlabelled=n_unlabelled)
        _MEMO[key] = dict(chk._asdict(), dt=target["dt"], steps=steps, seconds=time.time() - t0,
                          cpu_seconds=time.process_time() - c0)
    return _MEMO[key]


def run_scaling(cfg, docs: Path, bar):
    """Every (s, r1, r2, dynamic) cell: n* at each d, the fitted eta, the step/horizon check at the
    largest d. The data file is written after each cell (`partial: true` until the last), and a
    rerun of the same config resumes after the cells it finds there."""
    targets, ds_by_s = cfg["targets"], cfg["d"]
    rule = horizon_rule(cfg)
    path = docs / "data" / f"{cfg['name']}.json"
    out = {"config": cfg, "points": [], "horizon": [], "partial": True}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("partial") and json.loads(json.dumps(cfg, default=json_default)) == old["config"]:
            out.update(points=old["points"], horizon=old["horizon"])
    done = {(p["s"], p["r1"], p["r2"], p["dynamic"]) for p in out["points"]}
    for t in targets:
        ds = ds_by_s[str(t["s"])]
        for r1 in t.get("r1", cfg["r1"]):
            for r2 in t.get("r2", cfg["r2"]):
                for dyn in cfg["dynamics"]:
                    if (t["s"], r1, r2, dyn) in done:
                        bar.update(len(ds) + (rule == "largest_d"))
                        continue
                    res, seconds = [], []
                    for d in ds:
                        bar.set_postfix_str(f"{cfg['name']} s={t['s']} r1={r1} r2={r2} {dyn} d={d}")
                        t0 = time.time()
                        n_pred = predict_n(ds, [r.n_star("rho", cfg["threshold"]) for r in res], d)
                        res.append(measure_point(t, d, r1, r2, dyn, cfg["noise"], steps=steps_at(t, d, ds),
                                                 n_pred=n_pred, threshold=cfg["threshold"]))
                        seconds.append(time.time() - t0)
                        bar.update(1)
                    point = dict(s=t["s"], link=t["link"], activation=t["activation"], r1=r1, r2=r2,
                                 dynamic=dyn, d=ds, eta_hyp=hypothesis_eta(t["s"], r1, r2),
                                 valid_fraction=[float(r.valid.mean()) for r in res], seconds=seconds)
                    if "window" in t:
                        point["windows"] = [_MEMO[("windows",) + _point_key(t, d, r1, r2, dyn, cfg["noise"], 0,
                                                                              steps_at(t, d, ds), t["dt"])] for d in ds]
                    for metric in ("rho", "cos_u"):
                        fit = bootstrap_exponent(
                            ds, np.stack([r.n_grid for r in res]),
                            np.stack([getattr(r, metric) for r in res]), valid=np.stack([r.valid for r in res]),
                            threshold=cfg["threshold"], n_boot=cfg.get("n_boot", 500))
                        point[metric] = dict(eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c,
                                             n_star=fit.n_star.tolist())
                    if rule == "largest_d":
                        bar.set_postfix_str(f"{cfg['name']} s={t['s']} r1={r1} r2={r2} {dyn} horizon check d={ds[-1]}")
                        chk = check_point(t, ds[-1], r1, r2, dyn, cfg["noise"], cfg["threshold"],
                                          steps=steps_at(t, ds[-1], ds))
                        out["horizon"].append(dict(s=t["s"], d=ds[-1], r1=r1, r2=r2, dynamic=dyn, **chk))
                        point["horizon_ok"] = chk["ok"]
                        bar.update(1)
                    out["points"].append(point)
                    write_file(path, json.dumps(out, indent=1, default=json_default))
    del out["partial"]
    write_file(path, json.dumps(out, indent=1, default=json_default))
    plot_scaling(out, docs)
    replace_block(docs / "results.md", cfg["name"], scaling_table(out))
    return out


def scaling_units(cfg):
    n = 0
    cells = 0
    for t in cfg["targets"]:
        k = len(t.get("r1", cfg["r1"])) * len(t.get("r2", cfg["r2"])) * len(cfg["dynamics"])
        n += k * len(cfg["d"][str(t["s"])])
        cells += k
    return n + (cells if horizon_rule(cfg) == "largest_d" else 0)


def scaling_table(out):
    name = out["config"]["name"]
    lines = [
        f"![n* against d]({'figures/' + name + '_nstar.png'})",
        "",
        f"![eta against r2]({'figures/' + name + '_eta.png'})" if len({p['r2'] for p in out['points']}) > 1 else "",
        "",
        "n\\* on rho at each d (`<=`: the grid's bottom, an upper bound; `-`: not reached at the grid's top).",
        "",
        *_window_note(out["config"]),
        "| s | r1 | r2 | dynamic | d | n*(rho) | eta (rho) [90% CI] | eta (cos_u) [90% CI] | hypothesis | right-sign fraction | step/horizon check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    targets = {t["s"]: t for t in out["config"]["targets"]}
    for p in out["points"]:
        # "<=": n* is the grid's (or the last window's) bottom, an upper bound; "-": not reached at its top.
        bottom = ([w[-1][0] for w in p["windows"]] if "windows" in p else
                  [_n_grid(d, targets[p["s"]])[0] for d in p["d"]])
        nstar = ", ".join(
            "-" if not np.isfinite(x) else ("<=" if x <= b else "") + f"{x:.0f}"
            for x, b in zip(np.asarray(p["rho"]["n_star"], float), bottom)
        )
        er = p["rho"]
        ec = p["cos_u"]
        vf = ", ".join(f"{v:.2f}" for v in p["valid_fraction"]) if p["s"] % 2 and p["s"] >= 3 else "all"
        lines.append(
            f"| {p['s']} | {p['r1']:g} | {p['r2']:g} | {p['dynamic']} | {', '.join(map(str, p['d']))} | {nstar} | "
            f"{fmt(er['eta'])} [{fmt(er['lo'])}, {fmt(er['hi'])}] | {fmt(ec['eta'])} [{fmt(ec['lo'])}, {fmt(ec['hi'])}] | "
            f"{p['eta_hyp']:.2f} | {vf} | {_check_word(p.get('horizon_ok'), p['rho']['n_star'][-1])} |"
        )
    if out.get("horizon"):
        lines += ["", "Step/horizon check of every cell at its largest d (n* on rho): the search rerun with the "
                  "horizon doubled (2x steps) and with dt halved at that doubled horizon (dt/2, 2x steps), on the grid "
                  "points that bracket the base n* within 30% (the window), on the base's samples and seeds; `ok` when "
                  "both reruns stay within 30% of the base. A rerun value `<=x` is at the window's bottom (an upper "
                  "bound), `>x` not reached by the window's top.", "",
                  "| s | d | r1 | r2 | dynamic | dt, steps | n* base | 2x steps | dt/2, 2x steps | window | ok |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for h in out["horizon"]:
            lines.append(f"| {h['s']} | {h['d']} | {h['r1']:g} | {h['r2']:g} | {h['dynamic']} | {h['dt']:g}, {h['steps']} | "
                         f"{fmt(h['base'], 0)} | {_rerun(h['longer'], h)} | {_rerun(h['finer'], h)} | "
                         f"{_window(h)} | {_ok_cell(h)} |")
        lines += ["", _pass_line(out["horizon"])]
    return "\n".join(lines)


def _window_note(cfg):
    """The caption's line for targets searched on a window of their grid (`experiments/window.py`)."""
    ws = sorted({t["window"] for t in cfg["targets"] if "window" in t})
    if not ws:
        return []
    return [f"Searched on a window of {', '.join(map(str, ws))} consecutive grid points (ratio "
            f"2^{cfg['targets'][0].get('log2_step', 0.5):g}) around the n\\* predicted from the smaller d, on the "
            "whole grid's samples (the first two d run the whole grid); a window that misses n\\*, or whose success "
            "fraction does not run from <= 1/4 to >= 3/4, moves and reruns (`experiments/window.py`). "
            + ("Right-sign seeds only (drawn until there are `seeds` of them). "
               if any(t.get("right_sign_seeds") for t in cfg["targets"]) else ""), ""]


def _check_word(ok, base=0.0):
    if ok is None:
        return "not run"
    if base is None or not np.isfinite(base):
        return "no n* to check"
    return "ok" if ok else "NOT CONVERGED"


def _ok_cell(h):
    return "n/a (no n*)" if not np.isfinite(h["base"]) else ("yes" if h["ok"] else "NO")


def _pass_line(hs):
    """How many checked cells pass, among those with a base n*."""
    have = [h for h in hs if np.isfinite(h["base"])]
    bad = [h for h in have if not h["ok"]]
    none = len(hs) - len(have)
    text = f"{len(have) - len(bad)} of {len(have)} cells with an n* pass"
    if none:
        text += f" ({none} without an n* on the grid: nothing to check)"
    if bad:
        return text + ("; the cells marked NO are not converged in the step/horizon at their largest d, and their n* "
                       "are read as such (see the verdicts).")
    return text + ": each of their n* is converged in the step and the horizon."


def _window(h):
    w = h.get("window") or ()
    return f"{w[0]:.0f}-{w[1]:.0f}" if len(w) == 2 else "-"


def _rerun(x, h):
    """A rerun's n*: `<=` at the window's bottom, `>` past its top."""
    w = h.get("window") or ()
    if x is None or not np.isfinite(x):
        return f">{w[1]:.0f}" if len(w) == 2 else "n/a"
    return ("<=" if len(w) == 2 and x <= w[0] else "") + f"{x:.0f}"


def plot_scaling(out, docs):
    """n* against d per (s, r1, dynamic) panel, with the fitted lines, and eta against r2:
    the project's style (colour-blind palette, plain log ticks, legends outside the data)."""
    from spikejax.plot import style

    plt = _pyplot()
    cfg = out["config"]
    name = cfg["name"]
    pts = out["points"]
    panels = sorted({(p["s"], p["r1"], p["dynamic"]) for p in pts})
    r2_values = sorted({p["r2"] for p in pts})
    colour = {r2: style.PALETTE[i % len(style.PALETTE)] for i, r2 in enumerate(r2_values)}
    targets = {t["s"]: t for t in cfg.get("targets", [])} if isinstance(cfg.get("targets"), list) else {}
    with style.style():
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 2.4, 3.1 * rows), squeeze=False,
                                 layout="constrained")
        for ax, (s, r1, dyn) in zip(axes.flat, panels):
            sel = [p for p in pts if (p["s"], p["r1"], p["dynamic"]) == (s, r1, dyn)]
            for p in sel:
                d = np.asarray(p["d"], float)
                ns = np.asarray(p["rho"]["n_star"], float)
                e = p["rho"]
                ax.plot(d, ns, style.MARKERS[r2_values.index(p["r2"]) % len(style.MARKERS)], color=colour[p["r2"]],
                        label=f"r2={p['r2']:g}")
                if np.isfinite(e["eta"]):
                    ax.plot(d, np.exp(e["log_c"]) * d ** e["eta"], "-", color=colour[p["r2"]], lw=1.2)
                    ax.text(0.03, 0.97 - 0.09 * r2_values.index(p["r2"]),
                            f"eta={e['eta']:.2f} [{fmt(e['lo'])}, {fmt(e['hi'])}]", transform=ax.transAxes,
                            fontsize=7, color=colour[p["r2"]], va="top")
            ax.set_xscale("log")
            ax.set_yscale("log")
            style.log_ticks(ax, "both")
            t = targets.get(s, {})
            what = f"{t.get('link', '')}/{t.get('activation', '')}, " if t else ""
            ax.set_title(f"s={s} ({what}r1={r1:g}), {dyn}", fontsize=9)
            ax.set_xlabel("d")
            ax.set_ylabel("n* (rho >= 0.9)")
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        style.legend_outside(fig, handles, labels, title="spike r2 (kappa = d^r2)")
        fig.suptitle("Empirical full-batch GD: n* against d with least-squares fits and 90% bootstrap intervals")
        save_figure(fig, docs / "figures" / f"{name}_nstar.png", tight=False)

        if len(r2_values) < 2:
            return
        curves = sorted({(p["s"], p["r1"]) for p in pts})
        fig, axes = plt.subplots(1, len(curves), figsize=(3.3 * len(curves) + 2.6, 3.3), squeeze=False,
                                 layout="constrained", sharey=True)
        for ax, (s, r1) in zip(axes.flat, curves):
            r2s = np.linspace(0, 1, 101)
            ax.plot(r2s, [hypothesis_eta(s, r1, r) for r in r2s], "k--", lw=1, label="hypothesis (claim 4)")
            for k, (dyn, off) in enumerate((("normalized", -0.01), ("preconditioned", 0.01))):
                sel = [p for p in pts if (p["s"], p["r1"], p["dynamic"]) == (s, r1, dyn)]
                if not sel:
                    continue
                st = style.dynamic_style(dyn, marker=True, index=k)
                r2 = np.array([p["r2"] for p in sel]) + off
                eta = np.array([p["rho"]["eta"] for p in sel])
                lo = np.array([p["rho"]["lo"] for p in sel])
                hi = np.array([p["rho"]["hi"] for p in sel])
                err = np.abs(np.nan_to_num(np.stack([eta - lo, hi - eta])))
                ax.errorbar(r2, eta, yerr=err, fmt=st.get("marker", "o"), color=st["color"], capsize=3,
                            label=f"{dyn} (rho)")
                eta_c = np.array([p["cos_u"]["eta"] for p in sel])
                ax.plot(r2 + 2 * off, eta_c, st.get("marker", "o"), mfc="none", color=st["color"], alpha=0.7,
                        label=f"{dyn} (cos_u)")
            ax.set_title(f"s={s}, r1={r1:g}", fontsize=9)
            ax.set_xlabel("r2  (kappa = d^r2)")
        axes.flat[0].set_ylabel("eta  (n* ~ d^eta)")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        style.legend_outside(fig, handles, labels)
        fig.suptitle("Fitted exponents against the spike, 90% intervals (full-batch GD)")
        save_figure(fig, docs / "figures" / f"{name}_eta.png", tight=False)


# ---------------------------------------------------------------- claim 3: |rho(w(0))| against d


def run_init_alignment(cfg, docs: Path, bar):
    plt = _pyplot()
    ds = cfg["d"]
    n = cfg["seeds"]
    rng = np.random.default_rng(0)
    rows = []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for (r1, r2), c in zip(cfg["regimes"], plt.cm.tab10.colors):
        vals = []
        for d in ds:
            p = make_problem(d, key=jax.random.key(d), r2=r2, r1=r1, link="h2", activation="relu")
            keys = jax.random.split(jax.random.key(20_000 + d), n)
            w0 = jax.vmap(lambda k: prepare(p, Normalized(), key=k)[1])(keys)
            vals.append(np.abs(np.asarray(jax.vmap(lambda w: rho_of(w, p))(w0))))
            bar.update(1)
        vals = np.array(vals)  # (D, n)
        m = vals.mean(1)
        slope = np.polyfit(np.log(ds), np.log(m), 1)[0]
        boot = [np.polyfit(np.log(ds), np.log(vals[np.arange(len(ds))[:, None], rng.integers(0, n, (len(ds), n))].mean(1)), 1)[0]
                for _ in range(500)]
        lo, hi = np.quantile(boot, [0.05, 0.95])
        hyp = -init_exponent(r1, r2)
        regime = "r2 <= r1" if r2 <= r1 else ("r1 <= r2 <= 2 r1" if r2 <= 2 * r1 else "r2 >= 2 r1")
        rows.append(dict(r1=r1, r2=r2, regime=regime, slope=slope, lo=lo, hi=hi, hypothesis=hyp, mean_abs_rho=m.tolist()))
        ax.loglog(ds, m, "o", color=c)
        ax.loglog(ds, np.exp(np.polyfit(np.log(ds), np.log(m), 1)[1]) * np.asarray(ds, float) ** slope, "-", color=c,
                  label=f"r1={r1:g}, r2={r2:g}: slope {slope:.3f} (hyp. {hyp:.3f})")
    ax.set_xlabel("d")
    ax.set_ylabel("E |rho(w(0))|")
    ax.legend(fontsize=7)
    save_figure(fig, docs / "figures" / f"{cfg['name']}.png")
    out = dict(config=cfg, rows=rows)
    write_file(docs / "data" / f"{cfg['name']}.json", json.dumps(out, indent=1, default=json_default))
    lines = [f"![|rho(w(0))| against d](figures/{cfg['name']}.png)", "",
             f"d in {ds}, {n} draws of w(0) per d; slope of log E|rho| against log d, 90% bootstrap interval over draws.", "",
             "| r1 | r2 | regime | measured slope [90% CI] | hypothesis | difference |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['r1']:g} | {r['r2']:g} | {r['regime']} | {r['slope']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | "
                     f"{r['hypothesis']:.3f} | {r['slope'] - r['hypothesis']:+.3f} |")
    replace_block(docs / "results.md", cfg["name"], "\n".join(lines))
    return out


# ---------------------------------------------------------------- claim 5: preconditioning


def run_preconditioning(cfg, docs: Path, bar):
    t, d = cfg["target"], cfg["d"]
    check = horizon_rule(cfg) == "largest_d"  # one d: every cell is checked there
    th = cfg["threshold"]

    def cell(dyn, r2, n_unlabelled=0):
        res = measure_point(t, d, cfg["r1"], r2, dyn, cfg["noise"], n_unlabelled=n_unlabelled)
        row = dict(dynamic=dyn, n_unlabelled=n_unlabelled, n_star_rho=res.n_star("rho", th),
                   n_star_cos_u=res.n_star("cos_u", th))
        bar.update(1)
        if check:
            bar.set_postfix_str(f"{cfg['name']} r2={r2} n_unlabelled={n_unlabelled} {dyn} horizon check")
            row["horizon"] = check_point(t, d, cfg["r1"], r2, dyn, cfg["noise"], th, n_unlabelled=n_unlabelled)
            bar.update(1)
        return row

    rows, unl = [], []
    for r2 in cfg["r2"]:
        for dyn in ("normalized", "preconditioned"):
            bar.set_postfix_str(f"{cfg['name']} r2={r2} {dyn}")
            rows.append(dict(r2=r2, kappa=d**r2, **cell(dyn, r2)))
    for k in cfg["n_unlabelled_over_d"]:
        for dyn in ("normalized", "preconditioned"):
            bar.set_postfix_str(f"{cfg['name']} n_unlabelled={k}d {dyn}")
            unl.append(cell(dyn, cfg["r2_unlabelled"], int(k * d)))
    out = dict(config=cfg, kappa_rows=rows, unlabelled_rows=unl)
    write_file(docs / "data" / f"{cfg['name']}.json", json.dumps(out, indent=1, default=json_default))
    plot_preconditioning(out, docs)
    replace_block(docs / "results.md", cfg["name"], preconditioning_table(out))
    return out


def preconditioning_units(cfg):
    cells = 2 * (len(cfg["r2"]) + len(cfg["n_unlabelled_over_d"]))
    return cells * (2 if horizon_rule(cfg) == "largest_d" else 1)


def _setting5(cfg):
    t = cfg["target"]
    return (f"d={cfg['d']}, s={t['s']} ({t['link']} link, {t['activation']}), r1={cfg['r1']:g}, noise {cfg['noise']:g}, "
            f"{t['seeds']} seeds, full-batch GD dt={t['dt']:g}, {t['steps']} steps")


def matplotlib_null():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def plot_preconditioning(out, docs):
    """n* against 1 + kappa (true Sigma) and against n_unlabelled (SigmaHat), normalized against
    preconditioned, rho filled and cos_u open; a cell not reached on the grid is drawn at the
    grid's top with an upward triangle."""
    from spikejax.plot import style

    plt = _pyplot()
    cfg = out["config"]
    t, d = cfg["target"], cfg["d"]
    top = float(_n_grid(d, t)[-1])
    with style.style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.9), layout="constrained")
        for k, dyn in enumerate(("normalized", "preconditioned")):
            st = style.dynamic_style(dyn, marker=True, index=k)
            for ax, sel, x_of in ((a1, [r for r in out["kappa_rows"] if r["dynamic"] == dyn], lambda r: 1 + r["kappa"]),
                                  (a2, [r for r in out["unlabelled_rows"] if r["dynamic"] == dyn], lambda r: r["n_unlabelled"])):
                x = np.array([x_of(r) for r in sel], float)
                for j, (metric, fill) in enumerate((("rho", True), ("cos_u", False))):
                    y = np.array([r[f"n_star_{metric}"] for r in sel], float)
                    y = np.where(np.isfinite(y), y, np.nan)
                    ax.plot(x, y, color=st["color"], linestyle=st["linestyle"] if fill else ":", marker=st["marker"],
                            mfc=st["color"] if fill else "white", lw=1.3 if fill else 1.0, label=f"{dyn}, n* on {metric}")
                    miss = ~np.isfinite(y)
                    if miss.any():  # side by side at the grid's top, so none hides another
                        ax.plot(x[miss] * 1.09 ** (2 * k + j - 1.5), np.full(miss.sum(), top), "^", color=st["color"],
                                mfc=st["color"] if fill else "white", ms=6, clip_on=False)
            ref = [r for r in out["kappa_rows"] if r["dynamic"] == dyn and r["r2"] == cfg["r2_unlabelled"]]
            if ref and np.isfinite(ref[0]["n_star_rho"]):
                a2.axhline(ref[0]["n_star_rho"], color=st["color"], ls=(0, (1, 2)), lw=1,
                           label=f"{dyn}, true Sigma, n* on rho")
        found = [r[f"n_star_{m}"] for r in out["kappa_rows"] + out["unlabelled_rows"] for m in ("rho", "cos_u")]
        low = min(v for v in found if np.isfinite(v))
        ticks = [v for v in (10, 20, 50, 100, 200, 500, 1000, 1500, 2000, 3000, 4000, 6000, 10000, 20000, 50000)
                 if low * 0.8 <= v <= top]
        for ax in (a1, a2):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(low * 0.8, top * 1.5)
            ax.axhline(top, color="0.6", lw=0.8, zorder=0)
            ax.text(0.02, top * 1.12, f"grid top {top:.0f} (triangles: not reached on the grid)",
                    transform=ax.get_yaxis_transform(), fontsize=7, color="0.35", va="bottom")
            style.log_ticks(ax, "both")
            ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
            ax.set_ylabel("n*  (median seed reaches 0.9)")
        a1.set_xlabel("condition number 1 + kappa  (kappa = d^r2)")
        xs = sorted({r["n_unlabelled"] for r in out["unlabelled_rows"]})
        a2.set_xticks(xs, [f"{v}\n({v / d:g} d)" for v in xs])
        a2.xaxis.set_minor_formatter(matplotlib_null())
        a2.set_xlabel("unlabelled samples for SigmaHat")
        a1.set_title("true Sigma, kappa swept")
        a2.set_title(f"SigmaHat at r2={cfg['r2_unlabelled']:g} (1 + kappa = {1 + d ** cfg['r2_unlabelled']:.0f})")
        style.legend_outside(fig)
        fig.suptitle(f"Claim 5, preconditioning: {_setting5(cfg)}")
        save_figure(fig, docs / "figures" / f"{cfg['name']}.png", tight=False)


def preconditioning_table(out):
    cfg = out["config"]
    t, d = cfg["target"], cfg["d"]
    rows, unl = out["kappa_rows"], out["unlabelled_rows"]
    checked = all("horizon" in r for r in rows + unl)

    def ok(*rs):
        return ", ".join(_check_word(r["horizon"]["ok"], r["horizon"]["base"]) if "horizon" in r else "not run" for r in rs)

    lines = [f"![n* against kappa and n_unlabelled](figures/{cfg['name']}.png)", "",
             f"{_setting5(cfg)}. Step/horizon check (last column, normalized, preconditioned): each cell rerun with "
             "the horizon doubled and with dt halved at that horizon, on the grid points bracketing its n*(rho) within "
             "30%, same samples and seeds.", "",
             "| r2 | 1 + kappa | normalized n*(rho) | preconditioned n*(rho) | normalized n*(cos_u) | preconditioned n*(cos_u) | step/horizon check |",
             "|---|---|---|---|---|---|---|"]
    for r2 in cfg["r2"]:
        a, b = (next(r for r in rows if r["r2"] == r2 and r["dynamic"] == dy) for dy in ("normalized", "preconditioned"))
        lines.append(f"| {r2:g} | {1 + a['kappa']:.0f} | {fmt(a['n_star_rho'], 0)} | {fmt(b['n_star_rho'], 0)} | "
                     f"{fmt(a['n_star_cos_u'], 0)} | {fmt(b['n_star_cos_u'], 0)} | {ok(a, b)} |")
    lines += ["", f"With SigmaHat from n_unlabelled samples (r2 = {cfg['r2_unlabelled']:g}):", "",
              "| n_unlabelled | normalized n*(rho) | preconditioned n*(rho) | normalized n*(cos_u) | preconditioned n*(cos_u) | step/horizon check |",
              "|---|---|---|---|---|---|"]
    for k in cfg["n_unlabelled_over_d"]:
        a, b = (next(r for r in unl if r["n_unlabelled"] == int(k * d) and r["dynamic"] == dy) for dy in ("normalized", "preconditioned"))
        lines.append(f"| {int(k * d)} | {fmt(a['n_star_rho'], 0)} | {fmt(b['n_star_rho'], 0)} | {fmt(a['n_star_cos_u'], 0)} | "
                     f"{fmt(b['n_star_cos_u'], 0)} | {ok(a, b)} |")
    if checked:
        hs = [dict(r["horizon"], dynamic=r["dynamic"], r2=r.get("r2", cfg["r2_unlabelled"]), n_unlabelled=r["n_unlabelled"])
              for r in rows + unl]
        lines += ["", "The step/horizon checks (n* on rho at d = " + str(d) + "; `<=x`: at the window's bottom, `>x`: not "
                  "reached by its top; n/a: no base n* to check):", "",
                  "| r2 | n_unlabelled | dynamic | n* base | 2x steps | dt/2, 2x steps | window | ok |",
                  "|---|---|---|---|---|---|---|---|"]
        for h in hs:
            lines.append(f"| {h['r2']:g} | {h['n_unlabelled']} | {h['dynamic']} | {fmt(h['base'], 0)} | "
                         f"{_rerun(h['longer'], h)} | {_rerun(h['finer'], h)} | {_window(h)} | {_ok_cell(h)} |")
        lines += ["", _pass_line(hs)]
    return "\n".join(lines)


# ---------------------------------------------------------------- claims 1-2: spherical failure


def run_spherical_failure(cfg, docs: Path, bar):
    plt = _pyplot()
    kappas = np.asarray(cfg["kappa"], float)
    r1s = np.asarray(cfg["r1"], float)
    d = cfg["d"]
    keys = jax.random.split(jax.random.key(30_000), cfg["seeds"])
    grids, checks = {}, {}
    rtol = cfg.get("rtol", 1e-6)
    for dyn in ("spherical", "normalized"):

        def final(kappa, r1, key, solver, dyn=dyn):
            p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=r1, link=cfg["link"], activation=cfg["activation"])
            tr = simulate(p, DYNAMICS[dyn](), key=key, solver=solver, dt=cfg["dt"], steps=cfg["steps"], reduced=True,
                          saveat=SaveAt(steps=3))
            return jnp.abs(tr.cos_u[-1]), jnp.abs(tr.rho[-1]), tr.status

        def grid(solver):
            one = lambda kappa, r1, key: final(kappa, r1, key, solver)
            f = jax.jit(jax.vmap(jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None)), (0, None, None)))
            return [np.asarray(x) for x in f(jnp.asarray(kappas), jnp.asarray(r1s), keys)]

        cu, rh, status = grid(Dopri5(rtol=rtol, atol=rtol * 1e-3))
        cu2, rh2, _ = grid(Dopri5(rtol=rtol * 1e-2, atol=rtol * 1e-5))  # the step check: 100x tighter
        grids[dyn] = dict(cos_u=np.median(cu, -1), rho=np.median(rh, -1))
        checks[dyn] = dict(max_change=float(max(np.max(np.abs(cu - cu2)), np.max(np.abs(rh - rh2)))),
                           not_ok=int(np.sum(status != 0)))
        bar.update(1)
    out = dict(config=cfg, checks=checks, **{f"{k}_{m}": v[m] for k, v in grids.items() for m in ("cos_u", "rho")})
    write_file(docs / "data" / f"{cfg['name']}.json", json.dumps(out, indent=1, default=json_default))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), constrained_layout=True, sharey=True)
    for ax, (dyn, m) in zip(axes, [(a, b) for a in ("spherical", "normalized") for b in ("cos_u", "rho")]):
        im = ax.imshow(grids[dyn][m].T, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma",
                       extent=[-0.5, len(kappas) - 0.5, -0.5, len(r1s) - 0.5])
        ax.set_xticks(range(len(kappas)), [f"{k:g}" for k in kappas], fontsize=7)
        ax.set_yticks(range(len(r1s)), [f"{r:g}" for r in r1s], fontsize=7)
        ax.set_xlabel("kappa")
        ax.set_title(f"{dyn}: median |{m}(w_T)|", fontsize=9)
        for i in range(len(kappas)):
            for j in range(len(r1s)):
                ax.text(i, j, f"{grids[dyn][m][i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="w" if grids[dyn][m][i, j] < 0.6 else "k")
    axes[0].set_ylabel("r1")
    fig.suptitle(f"Population flows, d = {d}, {cfg['link']} link, {cfg['activation']} neuron, median of {cfg['seeds']} "
                 f"seeds, T = {cfg['dt'] * cfg['steps']:g}", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.85, pad=0.01)
    save_figure(fig, docs / "figures" / f"{cfg['name']}.png", tight=False)
    sph, nor = grids["spherical"]["cos_u"], grids["normalized"]["cos_u"]
    lines = [f"![spherical failure heatmap](figures/{cfg['name']}.png)", "",
             f"Population gradient flows (3-coordinate form) solved to rtol {rtol:g} by Dopri5 to T = "
             f"{cfg['dt'] * cfg['steps']:g}, d = {d}, link {cfg['link']}, activation {cfg['activation']}, squared loss, "
             f"median over {cfg['seeds']} initialisations. Step check: the whole grid rerun at rtol {rtol * 1e-2:g}; "
             "the largest change of any final |cos_u| or |rho| of any run.", "",
             "| dynamic | min median |cos_u| over the grid | at (kappa, r1) | max | step check: max change | runs not ok |",
             "|---|---|---|---|---|---|"]
    for name, g in (("spherical", sph), ("normalized", nor)):
        i, j = np.unravel_index(np.argmin(g), g.shape)
        lines.append(f"| {name} | {g.min():.3f} | ({kappas[i]:g}, {r1s[j]:g}) | {g.max():.3f} | "
                     f"{checks[name]['max_change']:.1e} | {checks[name]['not_ok']} |")
    replace_block(docs / "results.md", cfg["name"], "\n".join(lines))
    return out


RUNNERS = dict(scaling=run_scaling, init_alignment=run_init_alignment, preconditioning=run_preconditioning,
               spherical_failure=run_spherical_failure, passage=run_passage, fullbatch=at_scale.run_fullbatch,
               **paper.RUNNERS)


def add_checks(cfg, docs: Path, bar):
    """`--checks-only`: the step/horizon check of every cell of a committed n* table
    (`docs/data/<name>.json`), each cell's base n* read from there (not rerun), then the table
    and figures redrawn. For adding checks to a run that is too costly to repeat. Cells run
    cheapest first (base n* x d x seeds x steps) and the data file is written after each, so
    an interrupted run resumes where it stopped."""
    path = docs / "data" / f"{cfg['name']}.json"
    out = json.loads(path.read_text())
    th, noise = cfg["threshold"], cfg["noise"]

    def cost(t, d, n):
        return (n if np.isfinite(n) else 0.0) * d * t["seeds"] * t["steps"]

    if cfg["kind"] == "scaling":
        targets = {t["s"]: t for t in cfg["targets"]}
        cell = lambda p: (p["s"], p["r1"], p["r2"], p["dynamic"])
        done = {cell(h): h for h in out.get("horizon", []) if "window" in h and cell(h) in
                {cell(p) for p in out["points"] if "horizon_ok" in p}}
        todo = sorted((p for p in out["points"] if cell(p) not in done),
                      key=lambda p: cost(targets[p["s"]], p["d"][-1], p["rho"]["n_star"][-1]))
        for p in todo:
            t, d = targets[p["s"]], p["d"][-1]
            bar.set_postfix_str(f"{cfg['name']} s={p['s']} r1={p['r1']} r2={p['r2']} {p['dynamic']} horizon check d={d}")
            chk = check_point(t, d, p["r1"], p["r2"], p["dynamic"], noise, th, base_n=p["rho"]["n_star"][-1],
                              steps=steps_at(t, d, p["d"]))
            done[cell(p)] = dict(s=p["s"], d=d, r1=p["r1"], r2=p["r2"], dynamic=p["dynamic"], **chk)
            p["horizon_ok"] = chk["ok"]
            out["horizon"] = [done[cell(q)] for q in out["points"] if cell(q) in done]  # in the table's order
            bar.update(1)
            write_file(path, json.dumps(out, indent=1, default=json_default))
        bar.update(len(out["points"]) - len(todo))
        out["checks_only"] = True
        write_file(path, json.dumps(out, indent=1, default=json_default))
        plot_scaling(out, docs)
        replace_block(docs / "results.md", cfg["name"], scaling_table(out))
    elif cfg["kind"] == "preconditioning":
        t, d = cfg["target"], cfg["d"]
        rows = out["kappa_rows"] + out["unlabelled_rows"]
        todo = sorted((r for r in rows if "horizon" not in r), key=lambda r: cost(t, d, r["n_star_rho"]))
        for r in todo:
            r2 = r.get("r2", cfg["r2_unlabelled"])
            bar.set_postfix_str(f"{cfg['name']} r2={r2} n_unlabelled={r['n_unlabelled']} {r['dynamic']} horizon check")
            r["horizon"] = check_point(t, d, cfg["r1"], r2, r["dynamic"], noise, th, n_unlabelled=r["n_unlabelled"],
                                       base_n=r["n_star_rho"])
            bar.update(1)
            write_file(path, json.dumps(out, indent=1, default=json_default))
        bar.update(len(rows) - len(todo))
        out["checks_only"] = True
        write_file(path, json.dumps(out, indent=1, default=json_default))
        plot_preconditioning(out, docs)
        replace_block(docs / "results.md", cfg["name"], preconditioning_table(out))


def check_units(cfg):
    if cfg["kind"] == "scaling":
        return sum(len(t.get("r1", cfg["r1"])) * len(t.get("r2", cfg["r2"])) * len(cfg["dynamics"]) for t in cfg["targets"])
    if cfg["kind"] == "preconditioning":
        return 2 * (len(cfg["r2"]) + len(cfg["n_unlabelled_over_d"]))
    return 0


def units(cfg):
    k = cfg["kind"]
    if k == "scaling":
        return scaling_units(cfg)
    if k == "init_alignment":
        return len(cfg["regimes"]) * len(cfg["d"])
    if k == "preconditioning":
        return preconditioning_units(cfg)
    if k == "passage":
        return passage_units(cfg)
    if k == "fullbatch":
        return at_scale.fullbatch_units(cfg)
    if k in paper.KINDS:
        return paper.UNITS[k](cfg)
    return 2


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python experiments/reproduce.py", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--configs", default="configs")
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", default=None,
                    help="passage configs: rerun only these targets, keep the others from docs/data")
    ap.add_argument("--refit", action="store_true", help="with --render: refit passage rows from their stored points")
    ap.add_argument("--render", action="store_true", help="redraw scaling tables and figures from docs/data, no runs")
    ap.add_argument("--checks-only", action="store_true",
                    help="run only the step/horizon checks of the committed n* tables in docs/data (base n* not rerun)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="run the configs in this many processes (make reproduce: 2, one per core)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs={args.jobs} is not allowed; give 1 or more processes")
    paths = sorted(Path(args.configs).glob("complexity_*.toml"))
    cfgs = [dict(load_config(p, args.scale), scale=args.scale) for p in paths]
    if args.only:
        cfgs = [c for c in cfgs if c["name"] in args.only]
    for c in cfgs:
        if c.get("skip"):
            tqdm.write(f"{c['name']}: committed at scale {' / '.join(c['only_scales'])} only; "
                       f"skipped at {args.scale} (make reproduce SCALE={c['only_scales'][0]} reruns it)")
    cfgs = [c for c in cfgs if not c.get("skip")]
    docs = Path(args.docs)
    if args.targets is not None:
        cfgs = [dict(c, only_targets=list(args.targets)) if c["kind"] in ("passage", "fullbatch") else c for c in cfgs]
    if args.render:
        for cfg in cfgs:
            if cfg["kind"] == "passage":
                out = json.loads((docs / "data" / f"{cfg['name']}.json").read_text())
                if args.refit:
                    out["rows"] = [dict(passage_row(out["config"], r["target"], r["d"], r["points"]), seconds=r["seconds"])
                                   for r in out["rows"]]
                    write_file(docs / "data" / f"{cfg['name']}.json", json.dumps(out, indent=1, default=json_default))
                render_passage(out, docs)
            if cfg["kind"] == "scaling":
                out = json.loads((docs / "data" / f"{cfg['name']}.json").read_text())
                plot_scaling(out, docs)
                replace_block(docs / "results.md", cfg["name"], scaling_table(out))
                at_scale.write_summary(docs)
            if cfg["kind"] == "fullbatch":
                out = json.loads((docs / "data" / f"{cfg['name']}.json").read_text())
                at_scale.plot_fullbatch(out, docs)
                replace_block(docs / "results.md", cfg["name"], at_scale.fullbatch_table(out))
                at_scale.write_summary(docs)
            if cfg["kind"] == "preconditioning":
                out = json.loads((docs / "data" / f"{cfg['name']}.json").read_text())
                plot_preconditioning(out, docs)
                replace_block(docs / "results.md", cfg["name"], preconditioning_table(out))
        return
    if args.checks_only:
        cfgs = [c for c in cfgs if check_units(c) and horizon_rule(c) == "largest_d"]
        t0 = time.time()
        with tqdm(total=sum(check_units(c) for c in cfgs), desc="checks", file=sys.stderr, dynamic_ncols=True) as bar:
            for cfg in cfgs:
                t1 = time.time()
                add_checks(cfg, docs, bar)
                tqdm.write(f"{cfg['name']} checks: {time.time() - t1:.0f} s")
        tqdm.write(f"checks ({args.scale}): {time.time() - t0:.0f} s in all")
        return
    t0 = time.time()
    if args.jobs > 1 and len(cfgs) > 1:
        run_parallel(cfgs, docs, args.jobs)
    else:
        with tqdm(total=sum(units(c) for c in cfgs), desc="reproduce", file=sys.stderr, dynamic_ncols=True) as bar:
            for cfg in cfgs:
                t1 = time.time()
                RUNNERS[cfg["kind"]](cfg, docs, bar)
                tqdm.write(f"{cfg['name']}: {time.time() - t1:.0f} s")
    tqdm.write(f"reproduce ({args.scale}): {time.time() - t0:.0f} s in all")


class _QuietBar:
    """The progress interface of the runners, silent (a worker of `run_parallel`)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass


def _run_group(cfgs, docs) -> list:
    """One worker of `run_parallel`: its configs in order, in one process (the scaling configs share
    `measure_point`'s memo, so they travel together). Returns `(name, seconds)` per config."""
    times = []
    for cfg in cfgs:
        t1 = time.time()
        RUNNERS[cfg["kind"]](cfg, docs, _QuietBar())
        times.append((cfg["name"], time.time() - t1))
    return times


def run_parallel(cfgs, docs: Path, jobs: int):
    """The configs in `jobs` worker processes (spawned: JAX does not survive a fork), the largest group
    first. Each config writes its own data file and figures; the shared docs/results.md is rewritten
    under a file lock (`harness.replace_block`), so the outputs equal a sequential run's."""
    import concurrent.futures as cf
    import multiprocessing as mp

    scaling = [c for c in cfgs if c["kind"] == "scaling"]
    groups = ([scaling] if scaling else []) + [[c] for c in cfgs if c["kind"] != "scaling"]
    groups.sort(key=lambda g: -sum(units(c) for c in g))
    with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool, \
            tqdm(total=len(cfgs), desc=f"reproduce ({jobs} processes)", file=sys.stderr, dynamic_ncols=True) as bar:
        for fut in cf.as_completed([pool.submit(_run_group, g, docs) for g in groups]):
            for name, sec in fut.result():
                tqdm.write(f"{name}: {sec:.0f} s")
                bar.update(1)


if __name__ == "__main__":
    main()
