"""The step scan: one-pass SGD on the exact chain at steps doubling from the claims grid's common
step, to find each dynamic's largest step that passes the step check, and to check the law
`n* = T(d) x batch / dt` by runs.

    python -m experiments.step_scan [--render] [--docs docs] [--s S ...]

The cells are complexity_20's at r1 in `R1` and r2 in `R2` (all 48), at their four largest d. At each d the scan runs c0 2^k, k = 1..`UP` (c0 the common step, drift/signal
ratio 0.1), and stops at the first step that fails the step check (n* c moves by more than 30%
against the step before; a censored median fails) or whose n* is under 3 batches (start-dominated).
Each larger step's budget is twice the step before's n* (a step that passes needs about half of it). The largest passing step `c_max(d)` is the last
one before it: the common step itself where the committed check at the largest d passed, and no
own step where it failed or where the common step's n* is under 3 batches. The exponent at each dynamic's own step is the fit of `n*(c_max(d))` over
the four d. `T(d)`, the population flow's time to the threshold from the run's own starts
(`step_share.point_law`), gives the law's `n_law = T batch / dt` at every step of the ladder.
Each finished point is added to docs/data/step_scan_points.json, the scan's one cache,
so a killed scan resumes, on a fresh clone too once the store is committed; `--s 4` (repeatable)
scans only the cells at that s, so that two processes can share the cells (the chain runs on one
core). The scan over every cell writes docs/data/step_scan.json (the one JSON writer),
docs/figures/step_scan.png and the results.md block `step_scan`, then removes the store.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import jax
import numpy as np

import spikejax as sj

from . import theory
from .claims import KINDS
from .harness import figures
from .harness.config import load_config, setting
from .harness.io import computed_or_stored, data_path, read_data, write_block
from .harness.onepass import passage_point, ragged, step_check
from .harness.points import add_point, read_points
from .harness.tables import fmt, sig
from .step_share import point_law

NAME = "step_scan"
STORE = "step_scan_points"  # docs/data/step_scan_points.json: the finished points of a scan under way
SOURCE = "complexity_20_claim4_chain"
CONFIG = Path("configs/claims") / f"{SOURCE}.toml"
R1 = (0.0, 0.25)
R2 = (0.0, 0.5, 0.75, 1.0)  # (0, 0.5, 1) at r1 = 0 until 2026-12-07
UP = 8  # at most 2^8 times the common step (2^4, then 2^6 until 2026-12-07: s = 4 reached each top)
MIN_BATCHES = 3  # a step whose n* is under 3 batches measures the start, not a rate: it does not pass
BUDGET = 2  # a larger step's sample budget, in units of the step before's n* (passing needs <= 0.65)


def _summary(p, k) -> dict:
    keep = ("d", "c", "batch", "eta", "n_star", "never", "n", "valid", "seconds")
    return dict(k=k, **{key: p[key] for key in keep})


def scan_d(cfg, target, base, base_ok, store=None) -> dict:
    """At one d: the ladder of steps c0 2^k from the committed point `base` (k = 0) up to the first
    step that fails the step check, and the largest passing step `k_max` (None where the common
    step's own check failed or its n* is under 3 batches). Each point is added to the store at
    `store` as it finishes, and read back from it."""
    ratio0, known = setting(target, cfg, "ratio"), read_points(store) if store else {}
    base_ok = base_ok and base["n_star"] is not None and base["n_star"] >= MIN_BATCHES * base["batch"]
    ladder, checks = [_summary(base, 0)], []
    for k in range(1, UP + 1 if base_ok else 1):  # no own step to find where the common one fails
        # the budget: BUDGET x the step before's n* (a step that needs more fails its check anyway),
        # not the grid's (up to 6e4 x n* at large kappa, which a stalled larger step would run out)
        prev = ladder[-1]["n_star"]
        cut = min(1.0, BUDGET * prev / (base["budget"] / 2**k)) if prev else 1.0
        key = f"{target['name']} d={base['d']} k={k}"
        pt = known.get(key) or passage_point(dict(cfg, horizon=cfg["horizon"] * cut), target, base["d"],
                                             ratio=ratio0 * 2**k)
        if store and key not in known:
            add_point(store, key, pt)
        checks.append(step_check(target["name"], pt, ladder[-1]))
        ladder.append(_summary(pt, k))
        if not (checks[-1]["ok"] and pt["n_star"] >= MIN_BATCHES * pt["batch"]):
            break
    passed = [c["ok"] and p["n_star"] >= MIN_BATCHES * p["batch"] for c, p in zip(checks, ladder[1:])]
    k_max = None if not base_ok else (passed.index(False) if False in passed else len(passed))
    return dict(d=base["d"], ladder=ladder, check_ratio=[c["ratio"] for c in checks], k_max=k_max,
                at_top=bool(base_ok and all(passed) and len(passed) == UP))


def _fit(ds, pts, n_boot):
    f = sj.bootstrap_passage(ds, ragged(pts, "n", np.nan), valid=ragged(pts, "valid", False).astype(bool), n_boot=n_boot)
    return dict(eta=f.eta, lo=f.lo, hi=f.hi, n_star=f.n_star.tolist())


def flow_time(cfg, target, point, store=None) -> float:
    """The population flow's median time to the threshold from the starts of the committed point
    (`step_share.point_law`), kept in the store beside the ladder's points."""
    key = f"{target['name']} d={point['d']} flow"
    kept = read_points(store).get(key) if store else None
    if kept is not None:
        return kept["flow_time"]
    t = point_law(cfg, target, point)["flow_time"]
    if store:
        add_point(store, key, dict(flow_time=t))
    return t


def scan_cell(cfg, row, check_ok, n_boot, bar, store=None) -> dict:
    """One cell: the scan at its four largest d, the flow's time at each, and the exponents at the common step
    and at the cell's own largest passing step, beside the law's at that step."""
    t = row["target"]
    scans = []
    for i in range(len(row["d"]) - 4, len(row["d"])):  # the four largest d (a fit needs four)
        bar(f"{t['name']} d={row['d'][i]}")
        sc = scan_d(cfg, t, row["points"][i], check_ok, store)
        sc["flow_time"] = flow_time(cfg, t, row["points"][i], store)
        sc["n_law"] = [theory.law_n(sc["flow_time"], p["batch"], p["eta"]).item() for p in sc["ladder"]]
        scans.append(sc)
    ds = [sc["d"] for sc in scans]
    out = dict(name=t["name"], s=t["s"], r1=t["r1"], r2=t["r2"], dynamic=t["dynamic"], d=ds, scans=scans,
               common=_fit(ds, [sc["ladder"][0] for sc in scans], n_boot), own=None, law_own=None)
    if all(sc["k_max"] is not None for sc in scans):
        own = [sc["ladder"][sc["k_max"]] for sc in scans]
        out["own"] = _fit(ds, own, n_boot)
        out["law_own"] = theory.law_exponent(ds, [sc["flow_time"] for sc in scans], [p["batch"] for p in own],
                                             [p["eta"] for p in own])
    return out


def claims(cells) -> list:
    """Claim 5 (preconditioned minus normalized, the same cell) and claim 4 (r2 = 0 minus r2, each
    dynamic) at the common step and at each dynamic's own step."""
    by = {(c["s"], c["r1"], c["r2"], c["dynamic"]): c for c in cells}
    eta = lambda c, at: np.nan if c is None or c[at] is None else c[at]["eta"]  # noqa: E731
    rows = []
    for (s, r1, r2, dyn), c in sorted(by.items()):
        if dyn == "preconditioned" and (s, r1, r2, "normalized") in by:
            o = by[(s, r1, r2, "normalized")]
            rows.append(dict(claim=5, s=s, r1=r1, r2=r2, what="preconditioned minus normalized",
                             common=eta(c, "common") - eta(o, "common"), own=eta(c, "own") - eta(o, "own")))
        if r2 != 0.0 and (s, r1, 0.0, dyn) in by:
            b = by[(s, r1, 0.0, dyn)]
            rows.append(dict(claim=4, s=s, r1=r1, r2=r2, what=f"r2 = 0 minus r2, {dyn}",
                             common=eta(b, "common") - eta(c, "common"), own=eta(b, "own") - eta(c, "own")))
    return rows


def compute(docs, n_boot, only_s=None) -> dict:
    """The scan of every cell (or of the cells at `s` in `only_s`, to split it over processes: each
    adds its points to the store, and a run over every cell then reads them back)."""
    jax.config.update("jax_enable_x64", True)  # the chain and the reduced flow run in float64
    cfg = load_config(CONFIG, "large", kinds=KINDS)
    data = read_data(docs, SOURCE)
    ok = {c["target"]: c["ok"] for c in data["step_checks"]}
    rows = [r for r in data["rows"] if r["target"]["r1"] in R1 and r["target"]["r2"] in R2
            and (not only_s or r["target"]["s"] in only_s)]
    t0, cpu = time.time(), time.process_time()
    bar = lambda what: print(f"{time.time() - t0:6.0f} s  {what}", flush=True)  # noqa: E731
    store = data_path(docs, STORE)
    cells = [scan_cell(cfg, r, ok.get(r["target"]["name"], False), n_boot, bar, store) for r in rows]
    return dict(source=SOURCE, r1=list(R1), r2=list(R2), up=UP, cells=cells, claims=claims(cells),
                seconds=time.time() - t0, cpu_seconds=time.process_time() - cpu)


def _own_text(c) -> str:
    if c["own"] is None:
        return "- (the common step fails its check)"
    return f"{fmt(c['own']['eta'])} {sj.interval_text(c['own']['lo'], c['own']['hi'])}"


def _cell_row(c) -> str:
    kmax = ", ".join("-" if sc["k_max"] is None else f"{2 ** sc['k_max']}" + ("+" if sc["at_top"] else "")
                     for sc in c["scans"])
    big = c["scans"][-1]
    ladder = ", ".join(f"{2 ** p['k']}: {sig(p['n_star'])} ({sig(p['n_star'] / n) if p['n_star'] else 'n/a'})"
                       for p, n in zip(big["ladder"], big["n_law"]))
    own = "-" if c["own"] is None else ", ".join(sig(x) for x in c["own"]["n_star"])
    law = "-" if c["law_own"] is None else (f"{fmt(c['law_own']['eta'])} = {fmt(c['law_own']['flow'])} + "
                                            f"{fmt(c['law_own']['step'])}")
    return (f"| {c['s']} | {c['r1']:g} | {c['r2']:g} | {c['dynamic']} | {', '.join(map(str, c['d']))} | {kmax} | "
            f"{', '.join(sig(x) for x in c['common']['n_star'])} | {own} | {ladder} | "
            f"{fmt(c['common']['eta'])} {sj.interval_text(c['common']['lo'], c['common']['hi'])} | {_own_text(c)} | {law} |")


def _run_seconds(out) -> float:
    """The one-pass runs' own times summed over every ladder step above the common one."""
    return sum(p["seconds"] for c in out["cells"] for sc in c["scans"] for p in sc["ladder"][1:])


def table(out) -> str:
    lines = [
        "![exponents at the common step and at each dynamic's own step](figures/step_scan.png)", "",
        f"One-pass SGD on the exact chain (`{out['source']}`'s cells, 64 seeds, its threshold, budget and "
        f"stop rule) at steps c0 2^k, k = 0..{out['up']}, c0 its common step. A step passes when n* c moves by at most "
        "30% against the step before (the step check) and n* is at least 3 batches; c_max(d) / c0 is the largest passing step in the scan (`+`: "
        "the scan's top, a lower bound; `-`: the common step's own check failed at the largest d, or its n* is under 3 "
        "batches: no own step). "
        "n* / n_law: the measured median over the law's T(d) batch / dt, T(d) the population flow's time to the "
        "threshold from the same starts. Exponents: least-squares fits over the four d, 90% seed-bootstrap intervals "
        f"(every resample kept). The ladder's runs took {_run_seconds(out):.0f} s (the sum of their own times, "
        f"some beside other runs or in an earlier sitting); assembling them {out['seconds']:.0f} s wall.", "",
        "| s | r1 | r2 | dynamic | d | c_max / c0 at each d | n* at c0 | n* at c_max | at the largest d, c / c0: n* (n* / n_law) | "
        "eta at c0 [90% CI] | eta at c_max [90% CI] | law's eta at c_max = flow + step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_cell_row(c) for c in out["cells"]]
    lines += ["", "Each claim's exponent gap at the common step and at each dynamic's own largest passing step:", "",
              "| claim | s | r1 | r2 | gap | at c0 | at c_max |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['s']} | {r.get('r1', 0.0):g} | {r['r2']:g} | {r['what']} | {r['common']:+.2f} | "
              + ("-" if not np.isfinite(r["own"]) else f"{r['own']:+.2f}") + " |" for r in out["claims"]]
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    ss = sorted({c["s"] for c in out["cells"]})
    r1s = out.get("r1", [0.0])
    with style.style():
        fig, axes = plt.subplots(len(r1s), len(ss), figsize=(4.0 * len(ss), 0.4 + 3.2 * len(r1s)),
                                 layout="constrained", squeeze=False, sharex=True)
        for (i, r1), (k, s) in itertools.product(enumerate(r1s), enumerate(ss)):
            ax = axes[i][k]
            for j, dyn in enumerate(("normalized", "preconditioned")):
                st = style.dynamic_style(dyn, marker=True)
                cs = sorted((c for c in out["cells"] if c["s"] == s and c["r1"] == r1 and c["dynamic"] == dyn),
                            key=lambda c: c["r2"])
                for at, fill, dx in (("common", True, -0.015), ("own", False, 0.015)):
                    pts = [(c["r2"] + dx + 0.01 * j, c[at]) for c in cs if c[at] is not None]
                    if not pts:
                        continue
                    x = np.array([p[0] for p in pts])
                    e = np.array([p[1]["eta"] for p in pts])
                    err = np.abs(np.nan_to_num(np.stack([e - [p[1]["lo"] for p in pts], np.array([p[1]["hi"] for p in pts]) - e])))
                    ax.errorbar(x, e, yerr=err, fmt=st.get("marker", "o"), color=st["color"], capsize=3,
                                mfc=st["color"] if fill else "white",
                                label=f"{dyn}, " + ("common step c0" if fill else "own largest passing step"))
            ax.set_title(f"s = {s}, r1 = {r1:g}", fontsize=9)
            ax.set_xticks(out["r2"])
            if i == len(r1s) - 1:
                ax.set_xlabel("r2  (kappa = d^r2)")
            if k == 0:
                ax.set_ylabel("eta  (n* ~ d^eta)")
        style.legend_outside(fig)
        fig.suptitle("One-pass SGD on the exact chain: exponents at the common step and at each dynamic's own step",
                     fontsize=10)
        figures.save_figure(fig, figures.figure_path(docs, NAME), tight=False)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m experiments.step_scan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--render", action="store_true", help="redraw the table and figure from docs/data/step_scan.json")
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--s", type=int, action="append", choices=(2, 3, 4),
                    help="scan only the cells at this s (repeatable) and write nothing but the store of points")
    args = ap.parse_args(argv)
    if args.s:
        compute(args.docs, args.n_boot, only_s=set(args.s))
        return
    out = computed_or_stored(args.docs, NAME, args.render, lambda: compute(args.docs, args.n_boot))
    plot(out, args.docs)
    write_block(args.docs, NAME, table(out))
    if not args.render:  # every point is now in docs/data/step_scan.json (--render keeps a scan under way's store)
        data_path(args.docs, STORE).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
