"""One-pass (and reused-batch) SGD's per-seed first passages (`sj.passage_n`), shared by the claims
that run them (passage, three_stage): the step, the input law, a point at one `d`, its disk cache
and the step check."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import jax
import numpy as np

from spikejax import DYNAMICS, Online, Reused, make_problem, passage_n

from .. import theory
from .config import setting, setting_or
from .io import json_default, write_file
from .seeds import seed_keys


def step_constant(target, cfg) -> float:
    """`c` in `eta = c * batch * d^{-s/2}` (Ben Arous-Gheissari-Jagannath's step, per sample
    `c d^{-s/2}`): the retraction's drift `eta^2 V d / (2 b)` against the signal
    `eta s alpha beta rho^{s-1}` at `rho = d^{-1/2}` is `c V / (2 s alpha beta)`, d-free; `c` is
    `ratio * 2 s alpha beta / V` (`ratio` small: the signal wins)."""
    ab, v = theory.noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    return setting(target, cfg, "ratio") * 2 * target["s"] * abs(ab) / v


def flow_ratio(n, valid, rho0, c, d, s, ab, end=0.9) -> tuple[list, float]:
    """Per seed, the SGD time to the first passage (`n c d^{-s/2}`: samples times the step per sample)
    over the flow time from that seed's own start; and their median over the counted seeds
    (a seed that never passed counts as infinitely slow, as in `median_n`)."""
    from spikejax import median_n

    r = np.asarray(n, float) * c * d ** (-s / 2) / np.maximum(theory.flow_time(s, ab, rho0, end), 1e-12)
    return r.tolist(), median_n(r, valid)


def input_law(spec):
    """The input law of a target or a law entry: `inputs = "gaussian"` (default), `"studentt"`
    (with `nu`) or `"rademacher"`."""
    from spikejax import Gaussian, Rademacher, StudentT

    name = spec.get("inputs", "gaussian")
    laws = dict(gaussian=lambda: Gaussian(), studentt=lambda: StudentT(float(spec["nu"])), rademacher=lambda: Rademacher())
    if name not in laws:
        raise ValueError(f"inputs={name!r} is not allowed; choose one of {', '.join(laws)}")
    return laws[name]()


def _source(target, b):
    reuse = target.get("reuse", 1)
    if reuse == 1:
        return Online(b, projected=bool(target.get("projected", True)))
    return Reused(b, reuse)


def seeds_at(cfg, target, d) -> int:
    """The target's seed count at `d`: `seeds`, or `seeds_by_d` (one count per d of its d list)."""
    if "seeds_by_d" not in cfg:
        return target["seeds"]
    return cfg["seeds_by_d"][target["name"]][list(cfg["d"][target["name"]]).index(d)]


def passage_point(cfg, target, d, ratio=None, batch=None):
    """`passage_n` at one `d` for one target: right-sign seeds only for odd `s >= 3`. With
    `reduced = true` the samples come from the exact chain (`sj.Chain`, float64, any `d`)."""
    if not setting_or(target, cfg, "reduced", False):
        return _passage_point(cfg, target, d, ratio, batch, {})
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)  # the chain's state is float64; restored for the next config
    try:
        return _passage_point(cfg, target, d, ratio, batch, {"reduced": True})
    finally:
        jax.config.update("jax_enable_x64", before)


def _setup(cfg, target, d, ratio, batch, run):
    """The step, batch, spike, problem, dynamic, seeds and step budget of a point."""
    s = target["s"]
    c = step_constant(dict(target, ratio=ratio) if ratio is not None else target, cfg)
    b = batch or min(max(1, int(round(target["batch_over_d"] * d))), setting_or(target, cfg, "batch_max", 2**62))
    eta = c * b * d ** (-s / 2)
    r2 = target.get("r2", cfg.get("r2"))
    kappa = float(d**r2) if r2 is not None else cfg.get("kappa", 0.0)
    p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=target.get("r1", cfg.get("r1", 0.0)),
                     link=target["link"], activation=target["activation"], noise=cfg["noise"],
                     loss=target.get("loss", "squared"), inputs=input_law(target), reduced=bool(run))
    dyn = DYNAMICS[setting(target, cfg, "dynamic")]()
    keys = seed_keys(p, dyn, d, seeds_at(cfg, target, d), s % 2 == 1 and s >= 3, **run)
    ab, _ = theory.noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    slow = 1 + kappa if cfg.get("horizon_kappa", False) else 1.0  # the bulk moves 1 + kappa times slower
    steps = int(min(2**30 if run else 2**22, np.ceil(cfg["horizon"] * slow * theory.escape_time(s, d, abs(ab)) / eta)))
    return dict(c=c, b=b, eta=eta, kappa=kappa, p=p, dyn=dyn, keys=keys, ab=abs(ab), steps=steps)


def _passage_point(cfg, target, d, ratio, batch, run):
    u = _setup(cfg, target, d, ratio, batch, run)
    t0 = time.time()
    res = passage_n(u["p"], u["dyn"], _source(target, u["b"]), keys=u["keys"], dt=u["eta"], steps=u["steps"],
                    thresholds=tuple(cfg["thresholds"]), stop_fraction=cfg.get("stop_fraction", 1.0),
                    chunk=cfg.get("chunk", 256), metric=target.get("metric", cfg.get("metric", "rho")), **run)
    th = cfg["threshold"]
    col = int(np.argmin(np.abs(np.asarray(cfg["thresholds"]) - th)))
    ratios, ratio_med = flow_ratio(res.n[:, col], res.valid, res.rho0, u["c"], d, target["s"], u["ab"], th)
    return dict(d=d, c=u["c"], batch=u["b"], eta=u["eta"], steps=u["steps"], ran=res.ran, kappa=u["kappa"],
                budget=res.budget, seconds=time.time() - t0,
                n=res.n[:, col].tolist(), valid=res.valid.tolist(), n_star=res.n_star(th), never=res.never(th),
                rho0=res.rho0.tolist(), flow_ratio=ratios, flow_ratio_median=ratio_med,
                n_all=res.n.tolist(), n_star_all=[res.n_star(x) for x in cfg["thresholds"]],
                stopped_early=bool(res.ran < u["steps"]))


def _point_cache(cfg, target, d, ratio, batch):
    """A finished point's file under out/passage_points/ (a killed run resumes without rerunning it),
    keyed by everything that determines it."""
    keep = {k: v for k, v in cfg.items() if k not in ("name", "scale", "only_targets", "d", "seeds_by_d", "targets")}
    key = json.dumps([keep, target, d, ratio, batch, seeds_at(cfg, target, d)], sort_keys=True, default=str)
    return Path("out/passage_points") / f"{cfg['name']}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def stored_point(cfg, target, d, ratio=None, batch=None):
    """A finished point of a `reduced = true` config from out/passage_points/, or None."""
    path = _point_cache(cfg, target, d, ratio, batch)
    return json.loads(path.read_text()) if path.exists() else None


def cached_point(cfg, target, d, ratio=None, batch=None, point=None):
    """`point` (default `passage_point`), kept on disk for configs with `reduced = true` (the long chain runs)."""
    point = point or passage_point
    if not setting_or(target, cfg, "reduced", False):
        return point(cfg, target, d, ratio, batch)
    pt = stored_point(cfg, target, d, ratio, batch)
    if pt is not None:
        return pt
    path = _point_cache(cfg, target, d, ratio, batch)
    pt = point(cfg, target, d, ratio, batch)
    write_file(path, json.dumps(pt, default=json_default))
    return pt


def ragged(pts, key, fill) -> np.ndarray:
    """`[p[key] for p in pts]` as one array, the seed axis padded with `fill` to the longest."""
    rows = [np.asarray(p[key], float) for p in pts]
    out = np.full((len(rows), max(len(r) for r in rows)) + rows[0].shape[1:], fill, float)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def step_check(name, base, half) -> dict:
    """The step check of one target at one d: `n* c` with `c` halved over `n* c` at the base `c`
    (one-pass SGD at a small enough step needs samples in proportion to 1/c); it passes within 30%."""
    nc = lambda p: p["n_star"] * p["c"] if p["n_star"] is not None and np.isfinite(p["n_star"]) else float("nan")
    ratio = nc(half) / nc(base) if np.isfinite(nc(base)) and nc(base) > 0 else float("nan")
    return dict(target=name, d=base["d"], c=base["c"], n_star=base["n_star"], c_half=half["c"],
                n_star_half=half["n_star"], never_half=half["never"], ratio=ratio,
                ok=bool(np.isfinite(ratio) and abs(ratio - 1) <= 0.3), seconds=half["seconds"])


def tail(row, n_boot=1000):
    """The fit over the large-d end of a row's stored points (`sj.tail_fit`, every seed kept), as
    `(d_lo, d_hi, eta, lo, hi)` for `theory.vs_rate`; None with fewer than 4 d."""
    import spikejax as sj

    if len(row["d"]) < 4:
        return None
    pts = row["points"]
    t = sj.tail_fit(row["d"], ragged(pts, "n", np.nan), ragged(pts, "valid", False).astype(bool), n_boot=n_boot)
    return (t.d_lo, t.d_hi, t.eta, t.lo, t.hi)


def slopes_text(row, n_boot=1000) -> tuple[str, str]:
    """A row's local slopes between consecutive d and its fit over the large-d end, as table text
    (`sj.local_slopes`, `tail`: 90% seed bootstrap, every resample kept, `open` where a resample's
    median is censored)."""
    import spikejax as sj

    pts = row["points"]
    n, valid = ragged(pts, "n", np.nan), ragged(pts, "valid", False).astype(bool)
    slopes = sj.local_slopes(row["d"], n, valid, n_boot=n_boot, ci=0.9)
    local = "; ".join(f"{x.d1:g}->{x.d2:g}: {x.slope:.2f} {sj.interval_text(x.lo, x.hi)}" for x in slopes)
    end = tail(row, n_boot)
    fit = "-" if end is None else f"{end[2]:.2f} {sj.interval_text(end[3], end[4])} over d = {end[0]:g}..{end[1]:g}"
    return local, fit


def algorithm(target) -> str:
    """`theory`'s algorithm of a one-pass target: one-pass SGD, or reused-batch SGD."""
    return theory.ONE_PASS if target.get("reuse", 1) == 1 else "reused-batch SGD"


def observable(metric, threshold) -> str:
    """`theory`'s observable of a first passage: weak recovery on |rho|, or `cos_u >= threshold`."""
    return theory.WEAK if metric == "rho" else f"{metric} >= {threshold:g}"


def flow_slope(row, cfg) -> float:
    """The flow's own slope over a row's d (the log at s = 2, the start), what its verdict compares
    with; NaN where the row has no interval."""
    t = row["target"]
    if not (np.isfinite(row["lo"]) and np.isfinite(row["hi"])):
        return float("nan")
    ab, _ = theory.noise_constant(t["link"], t["activation"], t.get("loss", "squared"), cfg["noise"])
    return theory.flow_exponent(t["s"], abs(ab), row["d"])[0]


def onepass_verdict(row, cfg, flow) -> str:
    """The verdicts of one passage row (`theory.verdict`): against Ben Arous-Gheissari-Jagannath
    where it applies (isotropic Gaussian one-pass on |rho|), the fit over the large-d end computed
    only when the whole-range interval is below the rate and the flow's slope; spiked Gaussian rows
    against the spiked one-pass rate of their dynamic where it is derived (docs/onepass_spiked.md)."""
    t = row["target"]
    s, lo, hi = t["s"], row["lo"], row["hi"]
    r2 = t.get("r2", cfg.get("r2"))
    kappa = cfg.get("kappa", 0.0)
    iso = r2 is None and kappa == 0.0
    known = max(1, s - 1)
    end = None  # the large-d fit, for a rate judged from the isotropic start (`theory.verdict` says where)
    if np.isfinite(hi) and hi < known and not (lo <= flow <= hi):
        end = tail(row, cfg.get("n_boot", 1000))
    return theory.verdict(lo, hi, row["d"], algorithm=algorithm(t), observable=observable(
        t.get("metric", cfg.get("metric", "rho")), cfg["threshold"]), s=s, r1=t.get("r1", cfg.get("r1", 0.0)), r2=r2,
        isotropic=iso, gaussian=t.get("inputs", "gaussian") == "gaussian", flow=flow, tail=end,
        dynamic=setting_or(t, cfg, "dynamic", None))


def point_setup(cfg, target, d) -> dict:
    """What a one-pass point at `d` runs with (as `passage_point` hands it to `passage_n`): `c`,
    batch `b`, step `eta`, `kappa`, the problem `p`, the dynamic `dyn`, the seed `keys`, `ab`, the step budget
    (with `reduced = true`, the chain's problem and seeds: the starts its run drew)."""
    return _setup(cfg, target, d, None, None, {"reduced": True} if setting_or(target, cfg, "reduced", False) else {})
