"""experiments/step_scan.py: the ladder of steps and its stopping rules, on synthetic points with
hand-computed answers (no chain run: the default suite stays fast), and the claims' gaps."""

import numpy as np
import pytest

from experiments import step_scan as sc

CFG = dict(ratio=0.1, horizon=8.0, reduced=True)
TARGET = dict(name="t", s=3, r1=0.0, r2=0.5, dynamic="normalized")


def _point(n_star, c, batch=16, d=256, budget=1e9):
    return dict(d=d, c=c, batch=batch, eta=c, n_star=n_star, never=0.0, n=[n_star] * 4, valid=[True] * 4, seconds=0.0,
                budget=budget)


def _ladder(monkeypatch, law):
    """Points whose n* at step ratio r is `law(r / 0.1)` (the multiple of the common step); records each budget asked."""
    asked = []

    def run(cfg, target, d, ratio=None, batch=None):
        asked.append(cfg["horizon"])
        return _point(law(ratio / 0.1), ratio)

    monkeypatch.setattr(sc, "passage_point", run)
    return asked


def test_the_ladder_stops_at_the_first_step_whose_n_star_c_moves(monkeypatch):
    # n* c constant up to 4x the common step, then 2x more samples than the flow limit at 8x
    asked = _ladder(monkeypatch, lambda m: 6400.0 / m if m <= 4 else 2 * 6400.0 / m)
    out = sc.scan_d(CFG, TARGET, _point(6400.0, 0.1), True)
    assert out["k_max"] == 2 and [p["k"] for p in out["ladder"]] == [0, 1, 2, 3]
    assert out["check_ratio"] == pytest.approx([1.0, 1.0, 0.5])
    assert not out["at_top"]
    # each larger step's budget: twice the step before's n* (in units of the grid's budget at that step)
    assert asked[0] == pytest.approx(8.0 * 2 * 6400.0 / (1e9 / 2))


def test_start_dominated_steps_and_a_failed_common_step_do_not_pass(monkeypatch):
    _ladder(monkeypatch, lambda m: 320.0 / m)  # the flow limit, but n* = 40 at 8x: under 3 batches of 16
    out = sc.scan_d(CFG, TARGET, _point(320.0, 0.1), True)
    assert out["k_max"] == 2 and len(out["ladder"]) == 4  # stopped at 8x
    assert sc.scan_d(CFG, TARGET, _point(320.0, 0.1), False)["k_max"] is None  # the grid's own check failed
    low = sc.scan_d(CFG, TARGET, _point(32.0, 0.1), True)  # the common step is start-dominated: no scan
    assert low["k_max"] is None and len(low["ladder"]) == 1
    top_n = 16 * 3 * 2.0**sc.UP  # n* at the top step still 3 batches of 16
    _ladder(monkeypatch, lambda m: top_n / m)  # the flow limit all the way: the top is a lower bound
    top = sc.scan_d(CFG, TARGET, _point(top_n, 0.1), True)
    assert top["k_max"] == sc.UP and top["at_top"] and len(top["ladder"]) == sc.UP + 1


def test_claims_compare_the_gaps_at_each_step():
    def cell(r2, dyn, common, own, r1=0.0):
        return dict(s=3, r1=r1, r2=r2, dynamic=dyn, common=dict(eta=common), own=None if own is None else dict(eta=own))

    cells = [cell(0.0, "normalized", 2.0, 1.9), cell(0.5, "normalized", 1.2, 1.5),
             cell(0.0, "preconditioned", 2.1, 1.95), cell(0.5, "preconditioned", 1.6, None),
             cell(0.5, "normalized", 0.2, 0.2, r1=0.25)]  # another r1: no r2 = 0 cell to compare with
    out = sc.claims(cells)
    assert all(r["r1"] == 0.0 for r in out) and len(out) == 4
    rows = {(r["claim"], r["r2"], r["what"]): r for r in out}
    assert rows[(5, 0.5, "preconditioned minus normalized")]["common"] == pytest.approx(0.4)
    assert np.isnan(rows[(5, 0.5, "preconditioned minus normalized")]["own"])
    assert rows[(4, 0.5, "r2 = 0 minus r2, normalized")]["own"] == pytest.approx(0.4)
    assert rows[(5, 0.0, "preconditioned minus normalized")]["own"] == pytest.approx(0.05)


def test_points_in_the_store_are_read_back_and_new_ones_added(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the store's lock file goes under ./out
    store = tmp_path / "points.json"
    asked = _ladder(monkeypatch, lambda m: 6400.0 / m if m <= 4 else 2 * 6400.0 / m)
    first = sc.scan_d(CFG, TARGET, _point(6400.0, 0.1), True, store)
    kept = sc.read_points(store)
    assert sorted(kept) == [f"t d=256 k={k}" for k in (1, 2, 3)] and len(asked) == 3
    assert kept["t d=256 k=3"]["n_star"] == pytest.approx(2 * 6400.0 / 8)
    # a second scan (a fresh clone with the store committed) runs no point and gives the same ladder
    again = sc.scan_d(CFG, TARGET, _point(6400.0, 0.1), True, store)
    assert len(asked) == 3 and again["k_max"] == first["k_max"] == 2
    assert [p["n_star"] for p in again["ladder"]] == [p["n_star"] for p in first["ladder"]]
    # a point the store holds wins over a run: change one and the ladder stops earlier
    sc.add_point(store, "t d=256 k=2", dict(kept["t d=256 k=2"], n_star=6400.0 / 8))
    assert sc.scan_d(CFG, TARGET, _point(6400.0, 0.1), True, store)["k_max"] == 1


def test_the_flow_time_is_computed_once_and_kept_in_the_store(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    store, calls = tmp_path / "points.json", []
    monkeypatch.setattr(sc, "point_law", lambda cfg, t, p: calls.append(p["d"]) or dict(flow_time=0.125 * p["d"]))
    assert sc.flow_time(CFG, TARGET, _point(6400.0, 0.1, d=512), store) == pytest.approx(64.0)
    assert sc.flow_time(CFG, TARGET, _point(6400.0, 0.1, d=512), store) == pytest.approx(64.0)
    assert calls == [512] and sc.read_points(store)["t d=512 flow"] == {"flow_time": 64.0}
    assert sc.flow_time(CFG, TARGET, _point(6400.0, 0.1, d=1024)) == pytest.approx(128.0)  # no store: computed
    assert calls == [512, 1024]
