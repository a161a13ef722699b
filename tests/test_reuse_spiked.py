"""experiments/reuse_spiked.py: the step convention, the sources it builds, and its table from
synthetic censored n* with hand-computed answers (no chain run: the default suite stays fast)."""

import math

import numpy as np
import pytest

import spikejax as sj
from experiments import reuse_held as rh
from experiments import reuse_spiked as rs


def _point(name, d, r2, n, batch):
    """A stored point as `rs.point` writes it: null for a censored seed."""
    return dict(source=name, d=d, r2=r2, batch=batch, budget=256.0 * d, valid=[True] * len(n),
                n=[None if not np.isfinite(v) else float(v) for v in n], censored=[not np.isfinite(v) for v in n])


def test_step_convention_and_sources():
    cfg = rs.SETTINGS
    for d in (64, 2048):
        assert rs.batch_size(cfg, d) == d // 4
        assert rs.step_of(cfg, d) == pytest.approx(cfg["c"] / 4)  # eta = c b / d: per-sample step c / d
        assert rs.step_budget(cfg, "reused2", d) == 2 * rs.step_budget(cfg, "online", d)  # same samples
        assert rs.step_budget(cfg, "online", d) * rs.batch_size(cfg, d) == cfg["budget_over_d"] * d
    assert isinstance(rs.make_source(cfg, "online", 64), sj.Online)
    reused = rs.make_source(cfg, "reused2", 64)
    assert isinstance(reused, sj.Reused) and reused.reuse == 2 and reused.batch == 16
    egd = rs.make_source(cfg, "egd", 64)
    assert isinstance(egd, sj.ExtraGradient) and egd.displacement == cfg["c"]  # the reused sample's own shift
    more = rs.make_source(cfg, "reused8", 64)
    assert isinstance(more, sj.Reused) and more.reuse == 8
    assert rs.step_budget(cfg, "reused8", 64) == 8 * rs.step_budget(cfg, "online", 64)
    for bad in ("full", "reused1", "reusedx"):
        with pytest.raises(ValueError, match=f"source='{bad}' is not allowed"):
            rs.make_source(cfg, bad, 64)


def test_table_from_synthetic_censored_n():
    inf = math.inf
    ns = {64: [100, 200, 300, 400], 128: [400, 800, 1200, 1600], 256: [1000, inf, inf, inf]}
    points = {rs.key_of("online", d, 0.0): _point("online", d, 0.0, n, d // 4) for d, n in ns.items()}
    r = rs.row(points, "online", 0.0, [64, 128, 256], n_boot=200)
    # the censored median is the ceil(S/2)-th smallest: 200, 800; 3 of 4 censored at d = 256
    assert r["n_star"] == [200.0, 800.0, inf]
    assert r["status"] == ["measured", "measured", "censored"]
    assert r["not_passed"] == [0.0, 0.0, 0.75]
    first, second = r["slopes"]
    assert first["slope"] == pytest.approx(2.0)  # log(800 / 200) / log 2
    assert first["lo"] <= 2.0 <= first["hi"]
    assert second["slope"] == inf and second["hi"] == inf  # open at the top, never dropped
    assert r["whole"]["eta"] == inf and r["tail"]["eta"] == inf  # the last median is censored
    assert sj.interval_text(second["lo"], second["hi"]).endswith("open]")


def test_start_dominated_and_passed_at_start():
    ns = {64: [10, 10, 20, 30], 128: [200, 300, 400, 500]}
    points = {rs.key_of("egd", d, 0.5): _point("egd", d, 0.5, n, d // 4) for d, n in ns.items()}
    r = rs.row(points, "egd", 0.5, [64, 128], n_boot=50)
    assert r["status"] == ["start-dominated", "measured"]  # 10 < 3 batches of 16
    assert r["slopes"][0]["slope"] == pytest.approx(math.log(30) / math.log(2))
    # every seed passed at step 0 (n* = 0: the start is above the threshold): no slope is fitted
    zero = {rs.key_of("egd", d, 1.0): _point("egd", d, 1.0, [0, 0, 0], d // 4) for d in (64, 128)}
    r0 = rs.row(zero, "egd", 1.0, [64, 128], n_boot=50)
    assert r0["status"] == ["start-dominated"] * 2 and "slopes" not in r0


def test_off_spike_r1_is_its_own_series_on_the_common_grid():
    cfg = dict(rs.SETTINGS, sources=["online"], r2=[0.0], d=[64, 128], d_extra={"online": [256]}, n_boot=50)
    assert rs.r1_values(cfg) == [0.0, 0.25]
    assert rs.grid_d(cfg, "online", 0.0) == [64, 128, 256] and rs.grid_d(cfg, "online", 0.0, 0.25) == [64, 128]
    assert rs.key_of("online", 64, 0.0) == "main|online|64|0" and rs.key_of("online", 64, 0.0, r1=0.25).endswith("|r1=0.25")
    # a grid stored before the off-spike layer keeps its points (they are keyed by r1)
    assert rs.same_grid({k: v for k, v in cfg.items() if k != "r1_off"}, cfg)
    assert not rs.same_grid(dict(cfg, c=0.1), cfg)
    on = {d: [d, 2 * d, 3 * d] for d in (64, 128, 256)}  # n* = 2d on theta = u
    off = {64: [640, 1280, 1920], 128: [2560, 5120, 7680]}  # n* = 20 d^2 / 64 off the spike
    points = {rs.key_of("online", d, 0.0): _point("online", d, 0.0, n, d // 4) for d, n in on.items()}
    points.update({rs.key_of("online", d, 0.0, r1=0.25): _point("online", d, 0.0, n, d // 4) for d, n in off.items()})
    rows = {r["r1"]: r for r in rs.table(points, cfg) if r["threshold"] == cfg["threshold"]}
    assert rows[0.0]["d"] == [64, 128, 256] and rows[0.25]["d"] == [64, 128]
    assert [s["slope"] for s in rows[0.0]["slopes"]] == pytest.approx([1.0, 1.0])
    assert rows[0.25]["slopes"][0]["slope"] == pytest.approx(2.0)
    assert "| 0.25 | 0 |" in rs.markdown(dict(settings=cfg, table=list(rows.values())))


def test_persistence_table_reads_each_source():
    data = dict(rows=[dict(d=256, source="reused4", passed=0.875, held=0.12, final=0.19, peak=0.75),
                      dict(d=256, source="online", passed=0.0, held=None, final=0.1, peak=0.2)])
    lines = rs.persistence_table(data).splitlines()
    assert lines[2] == "| 256 | each batch 4 times, Reused(b, 4) | 0.88 | 0.12 | 0.19 | 0.75 |"
    assert lines[3].split(" | ")[3] == "-"  # no seed passed: no time above after a passage


def test_held_grid_budgets_and_rows():
    """The held grid: its own budget at r2 = 0.5, and a row from the held n* beside the first."""
    cfg = dict(rh.HELD, sources=["reused2"], r2=[0.0], d=[64, 128], n_boot=50)
    assert rs.step_budget(rh.HELD, "online", 64, 0.5) * 16 == 256 * 64
    assert rs.step_budget(rh.HELD, "online", 64, 0.0) * 16 == 1024 * 64 == rs.step_budget(rh.HELD, "online", 64) * 16
    first = {64: [100, 200, 300], 128: [200, 400, 600]}
    held = {64: [400, 800, math.inf], 128: [3200, 6400, math.inf]}  # one seed falls back: censored
    points = {}
    for d in (64, 128):
        pt = _point("reused2", d, 0.0, first[d], d // 4)
        pt["n_held"] = [None if not np.isfinite(v) else float(v) for v in held[d]]
        pt["above"] = [1.0, 0.9, 0.5 if d == 64 else None]
        points[rs.key_of("reused2", d, 0.0)] = pt
    rows = rs.table(points, cfg)
    assert [r.get("held", False) for r in rows] == [False, True]
    assert rows[0]["n_star"] == [200.0, 400.0] and rows[1]["n_star"] == [800.0, 6400.0]
    assert rows[0]["slopes"][0]["slope"] == pytest.approx(1.0) and rows[1]["slopes"][0]["slope"] == pytest.approx(3.0)
    assert rows[1]["above"] == [0.9, 0.95]  # medians over the seeds that passed
    assert "| 0.5 (held) | reused2 |" in rs.markdown(dict(settings=cfg, table=rows))


def test_kicks_table_reads_each_source():
    data = dict(rows=[dict(d=256, source="reused2", passed=1.0, jump=0.48, max_jump=0.71, falls=1.5, above=0.99),
                      dict(d=256, source="online", passed=0.0, jump=None, max_jump=None, falls=None, above=None)])
    lines = rh.kicks_table(data).splitlines()
    assert lines[2] == "| 256 | each batch twice, Reused(b, 2) | 1.00 | 0.48 (0.71) | 1.5 | 0.99 |"
    assert lines[3] == "| 256 | one-pass SGD, Online(b) | 0.00 | - (-) | - | - |"
