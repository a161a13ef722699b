"""Figures: every configuration drawn, both files written, --x/--y/--var honoured, readable ticks.

Synthetic datasets shaped like a sweep's results (no simulation), so the file runs in a
few seconds.
"""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spikejax import plot  # noqa: E402
from spikejax.plot import style  # noqa: E402
from spikejax.cli import main  # noqa: E402

STEPS = np.array([0, 1, 2, 5, 10, 30, 100, 300, 1000])


def fake_results(**axes):
    """A results dataset with the given swept axes (name -> values), 3 seeds, 9 records."""
    dims = ["seed", *axes, "step"]
    shape = [3, *(len(v) for v in axes.values()), len(STEPS)]
    rng = np.random.default_rng(0)
    curve = 1 - np.exp(-STEPS / 50.0)
    values = np.clip(curve * rng.uniform(0.5, 1.0, shape), 0, 1)
    coords = {"seed": np.arange(3), **{k: np.asarray(v) for k, v in axes.items()}, "step": STEPS}
    config = {"d": [128], "link": ["h2"], "activation": ["relu"], "source": ["population"], "loss": ["squared"],
              "dt": [0.5], "steps": [1000], "seeds": [0, 1, 2], "noise": [0.0], "r1": [0.0], "dynamic": ["normalized"]}
    for k, v in axes.items():
        config[k] = list(v.tolist() if hasattr(v, "tolist") else v)
    data = {name: (dims, values * (1 - 0.1 * i)) for i, name in enumerate(("rho", "cos_u", "cos_theta", "norm"))}
    data["status"] = (dims[:-1], np.full(shape[:-1], "ok", dtype=object))
    return xr.Dataset(data, coords=coords, attrs={"config": json.dumps(config), "fixed_d": "128"})


@pytest.fixture
def ds24():
    # 6 kappa x 2 r1 x 2 dynamics = 24 configurations: the case the old figure cut to 12.
    return fake_results(kappa=[1, 3, 10, 30, 100, 300], r1=[0.0, 0.25], dynamic=["spherical", "normalized"])


def config_lines(fig):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "config"]


def test_curves_draw_every_configuration(ds24):
    fig = plot.curves_figure(ds24)
    lines = config_lines(fig)
    assert len(lines) == 24 * 2  # every configuration, for each of rho and cos_u
    labels = {line.get_label() for line in lines}
    assert {f"{dyn}, kappa={k}" for dyn in ("spherical", "normalized") for k in (1, 3, 10, 30, 100, 300)} == labels
    assert "NOT SHOWN" not in fig._suptitle.get_text()
    # dynamics differ by line style as well as colour
    styles = {line.get_label().split(",")[0]: line.get_linestyle() for line in lines}
    assert styles["spherical"] != styles["normalized"]
    # the legend is outside every panel
    legend = fig.legends[0]
    fig.canvas.draw()
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent())
    plt.close(fig)


def test_curves_var_and_panels_left_out_are_stated():
    ds = fake_results(kappa=[1, 10, 100], r1=[0.0, 0.25, 0.5], noise=[0.0, 0.1, 0.2, 0.3], dynamic=["spherical", "normalized"])
    fig = plot.curves_figure(ds, var="rho", max_panels=8)
    assert len(fig.axes) == 8
    lines = config_lines(fig)
    assert len(lines) == 8 * 2 * 4  # panels x dynamics x values of the colour axis (noise: 4 values)
    title = fig._suptitle.get_text()
    assert "NOT SHOWN (1 of 9 panels): kappa=100, r1=0.5" in title
    plt.close(fig)


def test_titles_state_the_setting(ds24):
    fig = plot.curves_figure(ds24)
    title = fig._suptitle.get_text().replace("\n", " ")
    for part in ("d=128", "h2 link (s=2)", "relu activation", "population source", "squared loss", "3 seeds"):
        assert part in title
    plt.close(fig)


def test_title_of_a_multi_index_sweep_names_its_target():
    import json

    import xarray as xr

    cfg = {"d": [16], "target": ["staircase"], "k": [3], "link": ["h2"], "activation": ["relu"], "dt": [0.05],
           "steps": [400]}
    title = style.setting_title(xr.Dataset(attrs={"config": json.dumps(cfg)}))
    assert "staircase target (k=3)" in title and "h2 link" not in title
    cfg["target"] = ["single_index"]
    assert "h2 link (s=2)" in style.setting_title(xr.Dataset(attrs={"config": json.dumps(cfg)}))


def test_heatmap_honours_x_alone_and_annotates_cells(ds24):
    fig = plot.heatmap_figure(ds24, x="kappa")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 4  # (rho, cos_u) x (spherical, normalized)
    assert {ax.get_xlabel() for ax in panels} == {"kappa"}
    assert {ax.get_ylabel() for ax in panels} - {""} == {"r1"}
    for ax in panels:
        assert len(ax.texts) == 6 * 2  # one annotation per cell
    colourbars = [ax for ax in fig.axes if not ax.get_images() and ax not in panels]
    assert len(colourbars) == 2  # one per row, beside the panels
    plt.close(fig)
    fig = plot.heatmap_figure(ds24, y="kappa", var=["rho"])
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 and panels[0].get_ylabel() == "kappa" and panels[0].get_xlabel() == "r1"
    plt.close(fig)
    with pytest.raises(ValueError, match="--x='n' is not allowed"):
        plot.heatmap_figure(ds24, x="n")
    with pytest.raises(ValueError, match="--var='nope' is not allowed"):
        plot.curves_figure(ds24, var="nope")


def test_cli_plot_writes_png_and_pdf(ds24, tmp_path, capsys):
    ds24.to_netcdf(tmp_path / "results.nc", engine="scipy")
    main(["plot", str(tmp_path), "--var", "rho", "--x", "kappa"])
    printed = capsys.readouterr().out.split()
    names = ("curves.png", "curves.pdf", "heatmap.png", "heatmap.pdf")
    assert printed == [str(tmp_path / n) for n in names]
    for n in names:
        assert (tmp_path / n).stat().st_size > 1000
    assert (tmp_path / "curves.pdf").read_bytes()[:4] == b"%PDF"


def test_cli_plot_refuses_unknown_axis(ds24, tmp_path):
    ds24.to_netcdf(tmp_path / "results.nc", engine="scipy")
    with pytest.raises(SystemExit) as err:
        main(["plot", str(tmp_path), "--x", "d"])
    assert err.value.code == 2


def test_demo_figure_both_files(tmp_path):
    steps = np.array([0, 1, 3, 10, 50])
    cos = np.tile(np.linspace(0.1, 0.9, 5), (2, 1, 1))
    curves = {"normalized": (steps, cos), "spherical": (steps, cos * 0.7)}
    png = plot.plot_demo(curves, (1.0, 10.0), 0.5, tmp_path / "demo.png", d=16)
    assert png == str(tmp_path / "demo.png")
    assert (tmp_path / "demo.png").stat().st_size > 0 and (tmp_path / "demo.pdf").stat().st_size > 0


@pytest.mark.parametrize("lo, hi", [(0.25, 25.0), (30.0, 45.0), (16.0, 256.0), (0.5, 4000.0)])
def test_log_ticks_plain_and_not_overlapping(lo, hi):
    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.geomspace(lo, hi, 10)
    ax.plot(x, x)
    ax.set_xscale("log")
    style.log_ticks(ax, "x")
    fig.canvas.draw()
    assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]  # minor ticks unlabelled
    left, right = ax.get_xlim()
    shown = [t for t in ax.get_xticklabels() if left <= t.get_position()[0] <= right and t.get_text()]
    assert len(shown) >= 2
    assert all("times" not in t.get_text() and "^" not in t.get_text() for t in shown)  # plain numbers
    boxes = sorted((t.get_window_extent() for t in shown), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))  # no two labels overlap
    plt.close(fig)


def test_style_exports():
    for dyn in ("spherical", "normalized", "preconditioned", "vanilla"):
        kw = style.dynamic_style(dyn, marker=True)
        assert set(kw) == {"color", "linestyle", "marker"}
    assert len({style.dynamic_style(d)["linestyle"] for d in style.DYNAMIC_STYLE}) == 4
    assert style.dynamic_style("my_own", index=1) != style.dynamic_style("my_own", index=2)
    with style.style():
        assert matplotlib.rcParams["image.cmap"] == style.SEQUENTIAL
