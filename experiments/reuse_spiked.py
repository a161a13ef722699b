"""Data reuse and extragradient with a spike on the target, measured on the exact chain.

He3 target (`link = "h3"`), one neuron with the `h3` activation and the correlation loss (as
`configs/claims/complexity_15`'s `s = 3` cells, so one-pass SGD can learn it too), `sj.Normalized()`,
label noise 0.25, `theta = u` (`r1 = 0`) and, on the common grid, theta off the spike
(`r1_off`: `<u, theta> = d^-r1`, 0.25), `kappa = d^r2`. Three sources, each drawing fresh
batches of `b = d/4` samples:

- `online`: `sj.Online(b)`, one-pass SGD;
- `reused2`: `sj.Reused(b, 2)`, each fresh batch serves two consecutive steps;
- `egd`: `sj.ExtraGradient(b, c)`, Arnaboldi et al.'s displaced SGD with `displacement = c`;
- `reused4`, `reused8` (any `reusedR`, R >= 2): `sj.Reused(b, R)`, each fresh batch serves R steps.

**One step convention for every source:** a per-sample step `c / d`, i.e. `eta = c b / d` per
step (`c = 0.05`: `eta = 0.0125` with `b = d/4`, the same at every `d`; the reuse literature's
scaling, Arnaboldi et al.'s `gamma = prefactor * n / d`). A reused sample's own previous step
then moves its pre-activation by `eta |x|^2 / (b N(w)^2) ~ eta d / b = c`, a `d`-free shift, which
is what lets reuse see the generative exponent; EgD's displacement is set to the same `c`, so
its displaced sample gets the same shift. (One-pass SGD's own calibrated step is smaller,
`c d^{-3/2}` per sample, Ben Arous-Gheissari-Jagannath; at `c / d` one-pass SGD is expected to
stall once `1/sqrt(d)` falls below a `c`-sized noise floor. Its exponents at its own step are in
docs/results.md, `complexity_15`.)

`n*` = samples consumed when `|rho|` first reaches 0.5 (`sj.passage_n(..., reduced=True)`: the exact
chain, float64), right-sign seeds only (odd `s`), per seed; a seed that did not pass is censored
(stored as null with `censored = true`): either above the budget (`budget_over_d * d` samples) or
cut off when 80% of the seeds had passed (`stop_fraction`), which leaves the median unchanged.
Derived per source and `r2`: censored medians, each cell's `sj.cell_status`, local slopes per
octave and a fit over the large-`d` end (`sj.tail_fit`) and over the whole range, with 90% seed
bootstrap intervals that stay open where a resample's median is censored. The step check halves
`eta` (EgD's displacement kept) at one `d`: it records `n*(eta/2) / n*(eta)` (the raw change of
`n*`) and `n* eta` against `n* eta` (the project's check: the run is in its small-step regime when
`n* eta` moves by <= 30%, so the exponent does not depend on the step's constant).

Run from the repository root:

    python -m experiments.reuse_spiked run --out docs/data/reuse_spiked.json
    python -m experiments.reuse_spiked render docs/data/reuse_spiked.json

`run` resumes: the points already in `--out` (same settings) are kept. At this step reuse and
extragradient do not hold their passages (`persist`); `experiments/reuse_held.py` runs the grid at
a 5x smaller step where they do.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

SOURCE_NAMES = {"online": "one-pass SGD, Online(b)", "reused2": "each batch twice, Reused(b, 2)",
                "egd": "extragradient, ExtraGradient(b, c)"}


def reuse_of(name) -> int:
    """Steps a fresh batch serves: R for `reusedR` (R >= 2), else 1; a clear error for another name."""
    if name in ("online", "egd"):
        return 1
    if name.startswith("reused") and name[6:].isdigit() and int(name[6:]) >= 2:
        return int(name[6:])
    raise ValueError(f"source={name!r} is not allowed; choose online, egd or reusedR with R >= 2 (reused2, reused4, ...)")


def source_label(name) -> str:
    return SOURCE_NAMES.get(name) or f"each batch {reuse_of(name)} times, Reused(b, {reuse_of(name)})"


SETTINGS = dict(
    link="h3", activation="h3", loss="correlation", noise=0.25, dynamic="normalized", r1=0.0,
    r2=[0.0, 0.5, 1.0], d=[64, 128, 256, 512, 1024, 2048], batch_over_d=0.25, c=0.05,
    sources=["online", "reused2", "egd", "reused4", "reused8"], seeds=32, threshold=0.5, budget_over_d=256,
    high_threshold=0.9, high_threshold_r2=[1.0],
    stop_fraction=0.8, chunk=16, n_boot=1000, ci=0.9,
    step_check=dict(d=256, r2=0.0),
    # beyond the common grid, at r2 = 0 only: one-pass SGD is cheap on the chain (O(b) a step),
    # a reused batch costs O(b^2) a step (about 1 s a step for 32 seeds at b = 1024); EgD, which draws
    # its O(b^2) frame every step, about 3.4 s (extrapolated from 0.85 s at b = 512): not run there.
    # Reuse 4 times needs few steps (n* about 6 d), so it reaches d = 8192 (b = 2048) in minutes
    d_extra={"online": [4096, 8192, 16384], "reused2": [4096], "reused4": [4096, 8192]}, d_extra_r2=[0.0],
    # theta off the spike: every source and r2 again at these r1 (r1 = 0 above), on the common grid up
    # to r1_off_d_max (at d = 2048 a censored reused point runs its whole budget of O(b^2) steps: hours)
    r1_off=[0.25], r1_off_d_max=1024,
)

QUICK = dict(SETTINGS, d=[32, 64], r2=[0.0], seeds=8, n_boot=100, step_check=dict(d=32, r2=0.0), d_extra={}, r1_off=[])


def r1_values(cfg) -> list:
    """The main `r1` (theta = u at 0) and the off-spike ones (`r1_off`, on the common grid)."""
    return [cfg["r1"]] + [r for r in cfg.get("r1_off", []) if r != cfg["r1"]]


def grid_d(cfg, name, r2, r1=None) -> list:
    """The d of the (source, r2) series: the common grid, plus `d_extra` at the r2 in `d_extra_r2`
    (at the main r1; off the spike, the common grid up to `r1_off_d_max`)."""
    if r1 is not None and r1 != cfg["r1"]:
        return [d for d in cfg["d"] if d <= cfg.get("r1_off_d_max", max(cfg["d"]))]
    extra = cfg.get("d_extra", {}).get(name, []) if r2 in cfg.get("d_extra_r2", []) else []
    return sorted(set(cfg["d"]) | set(extra))


def same_grid(a, b) -> bool:
    """Whether two settings differ at most in the extension beyond the common grid, in the sources or
    in the off-spike r1 (points are keyed by source and r1: a rerun keeps the stored ones and adds the new)."""
    ignored = ("d_extra", "d_extra_r2", "sources", "r1_off", "r1_off_d_max")
    drop = lambda c: {k: v for k, v in json.loads(json.dumps(c)).items() if k not in ignored}  # noqa: E731
    return a is not None and drop(a) == drop(b)


def batch_size(cfg, d) -> int:
    return max(1, int(round(cfg["batch_over_d"] * d)))


def step_of(cfg, d, c=None) -> float:
    """`eta = c b / d`: the per-sample step `c / d` times the batch."""
    return (cfg["c"] if c is None else c) * batch_size(cfg, d) / d


def make_source(cfg, name, d):
    import spikejax as sj

    b, reuse = batch_size(cfg, d), reuse_of(name)
    if name == "egd":
        return sj.ExtraGradient(b, float(cfg["c"]))
    return sj.Online(b) if reuse == 1 else sj.Reused(b, reuse)


def step_budget(cfg, name, d, r2=None) -> int:
    """Steps for `budget_over_d * d` samples (a batch reused R times serves R steps); at an `r2`
    in `budget_over_d_at` (keyed by `f"{r2:g}"`), that budget instead."""
    per_d = cfg.get("budget_over_d_at", {}).get("" if r2 is None else f"{r2:g}", cfg["budget_over_d"])
    return int(np.ceil(per_d * d / batch_size(cfg, d))) * reuse_of(name)


def chain_setup(cfg, d, r2, r1, seeds):
    """The chain's problem at (d, r2, r1) in float64, the dynamic, and `seeds` right-sign keys (odd s)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import spikejax as sj

    from .harness.seeds import seed_keys

    p = sj.make_problem(d, key=None, kappa=float(d**r2), r1=r1, link=cfg["link"], activation=cfg["activation"],
                        noise=cfg["noise"], loss=cfg["loss"], reduced=True)
    dyn = sj.DYNAMICS[cfg["dynamic"]]()
    return p, dyn, seed_keys(p, dyn, d, seeds, True, reduced=True)


def point(cfg, name, d, r2, eta=None, r1=None) -> dict:
    """`passage_n` on the chain at one (source, d, r2): every seed's n* at |rho| >= threshold."""
    r1 = cfg["r1"] if r1 is None else r1
    p, dyn, keys = chain_setup(cfg, d, r2, r1, cfg["seeds"])  # float64 on before spikejax is used
    import spikejax as sj

    kappa = float(d**r2)
    src = make_source(cfg, name, d)
    eta = step_of(cfg, d) if eta is None else eta
    steps = step_budget(cfg, name, d, r2)
    t0, c0 = time.time(), time.process_time()
    high = r2 in cfg.get("high_threshold_r2", [])
    th = (cfg["threshold"], cfg["high_threshold"]) if high else (cfg["threshold"],)
    held = bool(cfg.get("held", False))
    res = sj.passage_n(p, dyn, src, keys=keys, dt=eta, steps=steps, thresholds=th, held=held,
                       stop_fraction=cfg["stop_fraction"], chunk=cfg["chunk"], reduced=True)
    n = res.n[:, 0]
    cens = ~np.isfinite(n)
    extra = {}
    for field, nh in (("high", res.n[:, 1] if high else None), ("held", res.held_n[:, 0] if held else None)):
        if nh is not None:
            extra |= {f"n_{field}": [None if not np.isfinite(v) else float(v) for v in nh],
                      f"censored_{field}": (~np.isfinite(nh)).tolist(), f"n_star_{field}": sj.censored_median(nh, res.valid)}
    if held:  # per seed: the fraction of the steps from its first passage to the end at or above the threshold
        extra["above"] = [None if not np.isfinite(v) else float(v) for v in res.above[:, 0]]
    return dict(**extra, thresholds=list(th), source=name, d=d, r1=r1, r2=r2, kappa=kappa, batch=batch_size(cfg, d), eta=eta, steps=steps, ran=int(res.ran),
                budget=float(res.budget), n=[None if x else float(v) for v, x in zip(n, cens)], censored=cens.tolist(),
                valid=np.asarray(res.valid).tolist(), rho0=np.asarray(res.rho0).tolist(),
                n_star=sj.censored_median(n, res.valid), seconds=time.time() - t0, cpu=time.process_time() - c0)


def key_of(name, d, r2, tag="main", r1=0.0) -> str:
    return f"{tag}|{name}|{d}|{r2:g}" + (f"|r1={r1:g}" if r1 else "")


def n_array(pt, field="n") -> np.ndarray:
    """A point's per-seed n* (`field`: "n" at `threshold`, "n_high" at `high_threshold`), censored seeds as +inf."""
    return np.array([np.inf if v is None else v for v in pt[field]], float)


def median(pt) -> float:
    import spikejax as sj

    return sj.censored_median(n_array(pt), pt["valid"])


# ------------------------------------------------------------------------------------------ table


def series(points, name, r2, ds, field="n", r1=0.0):
    """The (source, r1, r2) series over `ds` (those present): d, (D, S) n* (NaN censored), (D, S) valid, batches."""
    pts = [points[key_of(name, d, r2, r1=r1)] for d in ds if key_of(name, d, r2, r1=r1) in points]
    pts = [p for p in pts if field in p]
    d = np.array([p["d"] for p in pts], float)
    s = max(len(p["n"]) for p in pts) if pts else 0
    n = np.full((len(pts), s), np.nan)
    valid = np.zeros((len(pts), s), bool)
    for i, p in enumerate(pts):
        n[i, : len(p["n"])] = np.where(np.isinf(n_array(p, field)), np.nan, n_array(p, field))
        valid[i, : len(p["n"])] = p["valid"]
    return d, n, valid, np.array([p["batch"] for p in pts], float), pts


def row(points, name, r2, ds, n_boot=1000, ci=0.9, field="n", threshold=0.5, r1=0.0) -> dict:
    """Medians, statuses, local slopes, the large-d fit and the whole-range fit of one series."""
    import spikejax as sj

    d, n, valid, b, pts = series(points, name, r2, ds, field, r1)
    meds = [sj.censored_median(n[i], valid[i]) for i in range(d.size)]
    status, prev = [], None
    for i, m in enumerate(meds):
        status.append(sj.cell_status(m, batch=b[i], previous=prev))
        prev = m
    if field == "n_held":  # the median (over the counted seeds that passed) fraction of the time above after the first passage
        above = [[a for a, v in zip(p["above"], p["valid"]) if v and a is not None] for p in pts]
        extra = dict(above=[float(np.median(a)) if a else None for a in above])
    else:
        extra = {}
    out = dict(**extra, source=name, r1=r1, r2=r2, threshold=threshold, d=d.tolist(), n_star=meds, n_star_over_d=[m / x for m, x in zip(meds, d)],
               status=status, budget=[p["budget"] for p in pts],
               not_passed=[float(np.mean(np.isnan(n[i][valid[i]]))) for i in range(d.size)])
    if d.size >= 2 and all(m > 0 for m in meds):  # n* = 0 (passed at the start): no slope
        out["slopes"] = [dict(d1=s.d1, d2=s.d2, slope=s.slope, lo=s.lo, hi=s.hi)
                         for s in sj.local_slopes(d, n, valid, n_boot=n_boot, ci=ci)]
        whole = sj.tail_fit(d, n, valid, d_min=d[0], n_boot=n_boot, ci=ci)
        out["whole"] = dict(eta=whole.eta, lo=whole.lo, hi=whole.hi, d_lo=whole.d_lo, d_hi=whole.d_hi)
    if d.size >= 3 and all(m > 0 for m in meds):
        t = sj.tail_fit(d, n, valid, n_boot=n_boot, ci=ci)
        out["tail"] = dict(eta=t.eta, lo=t.lo, hi=t.hi, d_lo=t.d_lo, d_hi=t.d_hi)
    return out


def step_checks(points, cfg) -> list[dict]:
    """n* at eta and eta/2 (EgD's displacement kept) at the step check's (d, r2), per source."""
    out = []
    d, r2 = cfg["step_check"]["d"], cfg["step_check"]["r2"]
    for name in cfg["sources"]:
        base, half = points.get(key_of(name, d, r2)), points.get(key_of(name, d, r2, "half"))
        if base is None or half is None:
            continue
        m, mh = median(base), median(half)
        raw = mh / m if np.isfinite(m) and m > 0 else float("nan")
        out.append(dict(source=name, d=d, r2=r2, eta=base["eta"], n_star=m, eta_half=half["eta"], n_star_half=mh,
                        ratio=raw, ratio_n_eta=raw / 2, small_step=bool(np.isfinite(raw) and abs(raw / 2 - 1) <= 0.3),
                        step_insensitive=bool(np.isfinite(raw) and abs(raw - 1) <= 0.3)))
    return out


def table(points, cfg) -> list[dict]:
    rows = []
    for r1, r2 in ((r1, r2) for r1 in r1_values(cfg) for r2 in cfg["r2"]):
        for name in cfg["sources"]:
            ds = grid_d(cfg, name, r2, r1)
            if not any(key_of(name, d, r2, r1=r1) in points for d in ds):
                continue
            r = row(points, name, r2, ds, cfg["n_boot"], cfg["ci"], "n", cfg["threshold"], r1)
            if set(ds) > set(cfg["d"]):  # extended: also the fits over the common grid
                common = row(points, name, r2, cfg["d"], cfg["n_boot"], cfg["ci"], "n", cfg["threshold"], r1)
                r.update({f"{k}_common": common[k] for k in ("whole", "tail") if k in common})
            rows.append(r)
        if cfg.get("held"):
            for name in cfg["sources"]:
                if any(key_of(name, d, r2, r1=r1) in points for d in cfg["d"]):
                    rows.append(dict(row(points, name, r2, cfg["d"], cfg["n_boot"], cfg["ci"], "n_held", cfg["threshold"], r1),
                                     held=True))
        if r2 in cfg.get("high_threshold_r2", []):
            for name in cfg["sources"]:
                if any(key_of(name, d, r2, r1=r1) in points for d in cfg["d"]):
                    rows.append(row(points, name, r2, cfg["d"], cfg["n_boot"], cfg["ci"], "n_high", cfg["high_threshold"], r1))
    return rows


# -------------------------------------------------------------------------------------------- run


def run(out, cfg=SETTINGS):
    from .harness.io import write_json

    out = Path(out)
    data = json.loads(out.read_text()) if out.exists() else {}
    points = data.get("points", {}) if same_grid(data.get("settings"), cfg) else {}
    t_start = time.time()

    def save():
        write_json(out, dict(settings=cfg, points=points, table=table(points, cfg), step_check=step_checks(points, cfg),
                             cpu_seconds=sum(p["cpu"] for p in points.values()),
                             wall_seconds=sum(p["seconds"] for p in points.values())))

    todo = [(name, d, r2, "main", r1) for r1 in r1_values(cfg) for name in cfg["sources"] for r2 in cfg["r2"]
            for d in grid_d(cfg, name, r2, r1)]
    sc = cfg["step_check"]
    todo += [(name, sc["d"], sc["r2"], "half", cfg["r1"]) for name in cfg["sources"]]
    big = max(cfg["d"])
    # small d first (a killed run keeps the cheap points), the costly O(b^2) extensions last
    todo.sort(key=lambda t: (t[1] > big and t[0] != "online", t[1], t[3] != "main", t[4]))
    for name, d, r2, tag, r1 in todo:
        k = key_of(name, d, r2, tag, r1)
        if k in points:
            continue
        eta = step_of(cfg, d) / 2 if tag == "half" else None
        pt = point(cfg, name, d, r2, eta, r1)
        pt["tag"] = tag
        points[k] = pt
        held = f" (held {pt['n_star_held'] / d:.3g})" if "n_star_held" in pt else ""
        print(f"{k}: n*/d = {pt['n_star'] / d:.3g}{held}, not passed {np.mean(pt['censored']):.2f}, ran {pt['ran']}/{pt['steps']} "
              f"steps, {pt['cpu']:.1f} s CPU ({time.time() - t_start:.0f} s)", flush=True)
        save()
    save()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"process CPU {ru.ru_utime + ru.ru_stime:.0f} s")


def rho_paths(cfg, ds, seeds, r2, records=None):
    """`(d, source, |rho| (seeds, T))` for every `d` in `ds` and source: `seeds` right-sign seeds over
    each source's whole budget, recorded at `records` equally spaced steps (None: at every step)."""
    import jax

    for d in ds:
        p, dyn, keys = chain_setup(cfg, d, r2, cfg["r1"], seeds)  # float64 on before spikejax is used
        import spikejax as sj

        for name in cfg["sources"]:
            src, steps = make_source(cfg, name, d), step_budget(cfg, name, d, r2)
            at = tuple(np.unique(np.round(np.linspace(0, steps, steps + 1 if records is None else records))).astype(int).tolist())
            run = jax.jit(jax.vmap(lambda k: sj.simulate(p, dyn, src, key=k, dt=step_of(cfg, d), steps=steps,  # noqa: B023
                                                         saveat=sj.SaveAt(steps=at), reduced=True).rho))
            yield d, name, np.abs(np.asarray(run(keys)))


def persistence(cfg=SETTINGS, ds=(256, 1024), seeds=16, records=257, r2=0.0) -> dict:
    """Whether |rho| stays above the threshold after its first passage: every source at `r2` and each
    `d`, right-sign seeds, |rho| recorded at `records` equally spaced times over the whole budget. Per
    source: the median final |rho|, the median largest |rho|, the fraction of seeds that passed, and
    the median (over seeds that passed) fraction of the records from the first passage on with
    |rho| >= threshold (equally spaced, so a fraction of the time; 65 log-spaced records until
    2026-12-07, which weighed the early times)."""
    rows, t0 = [], time.process_time()
    th = cfg["threshold"]
    for d, name, rho in rho_paths(cfg, ds, seeds, r2, records):
        hit = (rho >= th).any(1)
        held = [float(np.mean(r[np.argmax(r >= th):] >= th)) for r, h in zip(rho, hit) if h]
        rows.append(dict(d=d, r2=r2, source=name, final=float(np.median(rho[:, -1])), peak=float(np.median(rho.max(1))),
                         passed=float(hit.mean()), held=float(np.median(held)) if held else None))
        print(rows[-1], flush=True)
    return dict(threshold=th, seeds=seeds, records=records, rows=rows, cpu_seconds=time.process_time() - t0)


def persistence_table(data) -> str:
    lines = ["| d | source | seeds past the threshold | median fraction of the time above it after the first passage | "
             "median final \\|rho\\| | median largest \\|rho\\| |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        held = "-" if r["held"] is None else f"{r['held']:.2f}"
        lines.append(f"| {r['d']} | {source_label(r['source'])} | {r['passed']:.2f} | {held} | {r['final']:.2f} | {r['peak']:.2f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- render


def fmt_interval(lo, hi) -> str:
    import spikejax as sj

    return sj.interval_text(lo, hi)


def markdown(data) -> str:
    """The table of docs/reuse.md's section: per (r2, source) n*/d at each d with its status, local
    slopes, the whole-range and the large-d fit."""
    cfg = data["settings"]
    lines = ["| r1 | r2 | \\|rho\\| >= | source | n*/d at d = " + ", ".join(str(d) for d in cfg["d"]) + " | local slopes [90% CI] | "
             "whole range | large-d fit |", "|---|---|---|---|---|---|---|---|"]
    for r in data["table"]:
        def cell(m, st):
            txt = f"{m:.3g}" if np.isfinite(m) else "> budget"
            return txt if st == "measured" else f"{txt} ({st})"
        meds = ", ".join(("" if d in cfg["d"] else f"d = {d:g}: ") + cell(m, st)
                         for d, m, st in zip(r["d"], r["n_star_over_d"], r["status"]))
        if r.get("above"):
            meds += "; time above after the first passage " + ", ".join("-" if a is None else f"{a:.2f}" for a in r["above"])
        sl = "; ".join(f"{s['slope']:.2f} {fmt_interval(s['lo'], s['hi'])}" for s in r.get("slopes", []))
        w = r.get("whole")
        t = r.get("tail")
        fit = lambda f: f"{f['eta']:.2f} {fmt_interval(f['lo'], f['hi'])} (d = {f['d_lo']:g}..{f['d_hi']:g})"  # noqa: E731
        wt = "; ".join(fit(f) for f in (r.get("whole_common"), w) if f)
        tt = "; ".join(fit(f) for f in (r.get("tail_common"), t) if f)
        th = f"{r['threshold']:g}" + (" (held)" if r.get("held") else "")
        lines.append(f"| {r.get('r1', 0.0):g} | {r['r2']:g} | {th} | {r['source']} | {meds} | {sl} | {wt} | {tt} |")
    sc = data.get("step_check", [])
    if sc:
        lines += ["", "| step check | d | r2 | n* at eta | n* at eta/2 | n*(eta/2) / n*(eta) | (n* eta) ratio | small-step (<= 30%) | n* moves <= 30% |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in sc:
            lines.append(f"| {s['source']} | {s['d']} | {s['r2']:g} | {s['n_star']:.4g} | {s['n_star_half']:.4g} | "
                         f"{s['ratio']:.2f} | {s['ratio_n_eta']:.2f} | {'pass' if s['small_step'] else 'FAIL'} | "
                         f"{'yes' if s['step_insensitive'] else 'no'} |")
    return "\n".join(lines)


REFERENCE = "docs/data/complexity_15_claim4_online.json"


def onepass_reference(r2, threshold, r1=0.0, path=REFERENCE):
    """One-pass normalized SGD at its own calibrated step (`eta = 0.188 b d^{-3/2}`, `b = d`) from
    `complexity_15` (s = 3, h3 / h3, correlation, the same r1): (d, n*) at `threshold`, or None."""
    p = Path(path)
    if not p.exists():
        return None
    for r in json.loads(p.read_text())["rows"]:
        t = r["target"]
        if t["s"] == 3 and t["r1"] == r1 and t["dynamic"] == "normalized" and t["r2"] == r2:
            for b in r["by_threshold"]:
                if abs(b["threshold"] - threshold) < 1e-9:
                    return np.array(r["d"], float), np.array(b["n_star"], float)
    return None


def figure(data, path):
    """n*/d against d, log-log, one panel per (r1, r2), one line per source; hollow where not measured."""
    from spikejax.plot import style

    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    from .harness.figures import plot_cells, pyplot, status_handles

    plt = pyplot()
    cfg = data["settings"]
    colours = {"online": style.OKABE_ITO["blue"], "reused2": style.OKABE_ITO["orange"], "egd": style.OKABE_ITO["vermillion"],
               "reused4": style.OKABE_ITO["green"], "reused8": style.OKABE_ITO["purple"]}
    markers = {"online": "o", "reused2": "s", "egd": "D", "reused4": "^", "reused8": "v"}
    r1s = [r1 for r1 in r1_values(cfg) if any(r.get("r1", 0.0) == r1 for r in data["table"])]
    panels = [(i, j, r1, r2) for i, r1 in enumerate(r1s) for j, r2 in enumerate(cfg["r2"])]
    with style.style():
        fig, axes = plt.subplots(len(r1s), len(cfg["r2"]), figsize=(11, 0.9 + 4.0 * len(r1s)), sharey=True,
                                 layout="constrained", squeeze=False)
        seen = []
        for i, j, r1, r2 in panels:
            ax = axes[i][j]
            th = cfg["high_threshold"] if r2 in cfg.get("high_threshold_r2", []) else cfg["threshold"]
            for r in data["table"]:
                if r.get("r1", 0.0) != r1 or r["r2"] != r2 or r["threshold"] != th:
                    continue
                d = np.array(r["d"])
                y = np.array(r["n_star_over_d"], float)
                top = np.array(r["budget"], float) / d
                ok = np.isfinite(y)
                ax.plot(d[ok], y[ok], "-", color=colours[r["source"]], lw=1.2, zorder=2)
                plot_cells(ax, d, y, r["status"], colours[r["source"]], markers[r["source"]], top=top,
                           label=source_label(r["source"]))
                seen += r["status"]
            ref = onepass_reference(r2, th, r1)
            if ref is not None:
                keep = (ref[1] > 0) & (ref[0] >= min(cfg["d"]))
                ax.plot(ref[0][keep], ref[1][keep] / ref[0][keep], ":", color="0.45", marker=".", zorder=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"r1 = {r1:g}, r2 = {r2:g} (kappa = d^{r2:g})\nn* at |rho| >= {th:g}", fontsize=9)
            if i == len(r1s) - 1:
                ax.set_xlabel("d")
            if j == 0:
                ax.set_ylabel("median n* / d")
        for i, j, r1, r2 in panels:
            ax = axes[i][j]
            style.log_ticks(ax, "y")
            ticks = sorted({int(d) for r in data["table"] if r["r2"] == r2 and r.get("r1", 0.0) == r1 for d in r["d"]})
            ax.set_xticks(ticks, [str(d) if d <= 4096 or d == ticks[-1] else "" for d in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())

        src = [Line2D([], [], color=colours[s], marker=markers[s], label=source_label(s)) for s in cfg["sources"]]
        src.append(Line2D([], [], color="0.45", ls=":", marker=".", label="one-pass SGD at its own step 0.19 b d^-1.5,\nb = d (complexity_15, same threshold)"))
        handles = src + status_handles(seen)
        fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=3, fontsize=8.5)
        fig.suptitle(f"He3 target, h3 neuron, correlation loss, normalized, theta off u by r1, batch d/4, per-sample step "
                     f"{cfg['c']:g}/d, {cfg['seeds']} seeds (exact chain)", fontsize=10)
        return style.save(fig, path)


def render(path, figure_path="docs/figures/reuse_spiked.png"):
    data = json.loads(Path(path).read_text())
    if figure_path:
        print(figure(data, figure_path))
    print(markdown(data))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default="docs/data/reuse_spiked.json")
    r.add_argument("--quick", action="store_true", help="a tiny grid (d = 32, 64; 8 seeds) to check the pipeline")
    g = sub.add_parser("render")
    g.add_argument("data", nargs="?", default="docs/data/reuse_spiked.json")
    g.add_argument("--figure", default="docs/figures/reuse_spiked.png")
    h = sub.add_parser("persist", help="whether |rho| stays above the threshold after its first passage")
    h.add_argument("--out", default="docs/data/reuse_persistence.json")
    h.add_argument("--render", action="store_true", help="print the table from --out, no run")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a.out, QUICK if a.quick else SETTINGS)
    elif a.cmd == "persist":
        from .harness.io import computed_or_stored_at

        print(persistence_table(computed_or_stored_at(a.out, a.render, persistence)))
    else:
        render(a.data, a.figure)


if __name__ == "__main__":
    main()
