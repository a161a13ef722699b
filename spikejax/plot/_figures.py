"""Figures: the demo, a sweep's curves and its heatmaps, in the package style (`style.py`).

Each `*_figure` function builds a matplotlib figure from data and returns it; each
`plot_*` function builds one and writes it as PNG and PDF (`style.save`), returning the
PNG's path.
"""

from __future__ import annotations

import itertools

import numpy as np

from .style import (
    SEQUENTIAL,
    dynamic_style,
    legend_height,
    legend_outside,
    log_ticks,
    plt,
    save,
    setting,
    setting_title,
    shades,
    style,
    title_width,
)

# Axes over which a configuration is repeated: drawn as a median line and a min-max band.
REPLICATES = ("seed", "neuron")
# Overlaps: drawn as absolute values (even links make the sign of w arbitrary), on [0, 1].
OVERLAPS = ("rho", "cos_u", "cos_theta")
DEFAULT_VARS = ("rho", "cos_u")


def _label(var):
    return f"|{var}|" if var in OVERLAPS else var


def _time_axis(steps):
    """Steps on a log axis: step 0 (the initialisation) is drawn at 0.5."""
    return np.maximum(np.asarray(steps, float), 0.5)


def demo_figure(curves, kappas, dt, d=None):
    """`|cos(w, u)|` against time: one hue and line style per dynamic, darker for larger
    `kappa`; seed median with a min-max band."""
    fig, ax = plt.subplots(figsize=(7.5, max(4.2, legend_height(2 * len(kappas) + 1) + 0.8)),
                           layout="constrained")
    seeds = 1
    for dynamic in ("normalized", "spherical"):
        steps, cos = curves[dynamic]
        seeds = cos.shape[1]
        t = _time_axis(steps) * dt
        colours = shades(dynamic, len(kappas))
        for i, kappa in enumerate(kappas):
            c = cos[i]
            ax.plot(t, np.median(c, 0), color=colours[i], linestyle=dynamic_style(dynamic)["linestyle"],
                    label=f"{dynamic}, kappa={kappa:g}", gid="config")
            ax.fill_between(t, c.min(0), c.max(0), color=colours[i], alpha=0.15, linewidth=0)
    if d is not None:
        ax.axhline(1 / np.sqrt(d), color="grey", lw=0.8, ls=":", label="1/sqrt(d): random guess")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    log_ticks(ax, "x")
    ax.set_xlabel("time t = k dt")
    ax.set_ylabel("|cos(w, u)|")
    where = f"d={d}, " if d is not None else ""
    fig.suptitle(
        f"Population flows at theta = u: spherical stalls as kappa grows, normalized recovers u\n"
        f"{where}h2 link (s=2), relu activation, squared loss, flows solved by Dopri5 (rtol 1e-6), {seeds} seed{'s' * (seeds != 1)} "
        f"(median, min-max band)"
    )
    legend_outside(fig)
    return fig


def plot_demo(curves, kappas, dt, path, d=None):
    """The demo figure (`demo_figure`) written to `path` as PNG and PDF."""
    with style():
        return save(demo_figure(curves, kappas, dt, d=d), path)


def _check_vars(ds, var):
    var = tuple(DEFAULT_VARS if var is None else ([var] if isinstance(var, str) else var))
    allowed = [v for v in ds.data_vars if "step" in ds[v].dims]
    for v in var:
        if v not in allowed:
            raise ValueError(f"--var={v!r} is not allowed; choose from {allowed}")
    return var


def _axes_of(ds, var):
    """Swept axes of `var` other than replicates and time, in dataset order."""
    return [d for d in ds[var].dims if d not in REPLICATES and d != "step"]


def _reduce_replicates(da):
    """Values with every replicate axis stacked first: (replicates, step)."""
    rep = [d for d in da.dims if d in REPLICATES]
    if not rep:
        return da.values[None]
    return da.stack(_rep=rep).transpose("_rep", ...).values


def _fmt_value(v):
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def curves_figure(ds, *, var=None, max_panels=8):
    """Every configuration's `|var|` against the step, seed median with a min-max band.

    Rows are variables. In each panel the dynamic sets the hue family and line style, and
    the swept axis with the most values (the colour axis) the shade, light to dark. Any
    other swept axis becomes small multiples, one panel per combination of its values;
    beyond `max_panels` panels the rest are left out and the figure says which.
    Each configuration's median line has `gid="config"`.
    """
    var = _check_vars(ds, var)
    axes_ = _axes_of(ds, var[0])
    style_axis = "dynamic" if "dynamic" in axes_ else None
    rest = [a for a in axes_ if a != style_axis]
    colour_axis = max(rest, key=lambda a: ds.sizes[a]) if rest else None
    facet_axes = [a for a in rest if a != colour_axis]
    facets = list(itertools.product(*(range(ds.sizes[a]) for a in facet_axes)))
    shown = facets[:max_panels]
    dynamics = list(ds["dynamic"].values) if style_axis else [ds.attrs.get("fixed_dynamic") or setting(ds).get("dynamic", "")]
    colours_n = ds.sizes[colour_axis] if colour_axis else 1

    # Small multiples wrap after 5 columns (4 a row when there are more than 5 panels).
    ncols = len(shown) if len(shown) <= 5 else 4
    nrows = -(-len(shown) // ncols)
    entries = len(dynamics) * colours_n + 1
    height = max(0.8 + 2.6 * nrows * len(var), legend_height(entries) + 0.8)
    fig, axs = plt.subplots(nrows * len(var), ncols, figsize=(2.6 + 2.9 * ncols, height),
                            layout="constrained", squeeze=False)
    dt = setting(ds).get("dt")  # a fixed dt: the axis is time t = k dt, comparable across steps
    steps = np.maximum(ds["step"].values * dt, dt / 2) if dt else _time_axis(ds["step"].values)
    d_values = np.atleast_1d(ds["d"].values) if "d" in ds.dims else [setting(ds).get("d")]
    for vi, v in enumerate(var):
        for j, facet in enumerate(shown):
            row, col = vi * nrows + j // ncols, j % ncols
            ax = axs[row, col]
            sub = ds[v].isel({a: i for a, i in zip(facet_axes, facet)})
            for k, dyn in enumerate(dynamics):
                sd = sub.sel(dynamic=dyn) if style_axis else sub
                colours = shades(dyn, colours_n, index=k)
                linestyle = dynamic_style(dyn, index=k)["linestyle"]
                for c in range(colours_n):
                    da = sd.isel({colour_axis: c}) if colour_axis else sd
                    vals = _reduce_replicates(abs(da) if v in OVERLAPS else da)
                    parts = ([str(dyn)] if dyn else []) + (
                        [f"{colour_axis}={_fmt_value(ds[colour_axis].values[c])}"] if colour_axis else [])
                    with np.errstate(all="ignore"):
                        med, lo, hi = np.nanmedian(vals, 0), np.nanmin(vals, 0), np.nanmax(vals, 0)
                    ax.plot(steps, med, color=colours[c], linestyle=linestyle, label=", ".join(parts) or None,
                            gid="config")
                    ax.fill_between(steps, lo, hi, color=colours[c], alpha=0.12, linewidth=0)
            if v in ("rho", "cos_u"):
                for dv in d_values:
                    if dv:
                        ax.axhline(1 / np.sqrt(float(dv)), color="grey", ls=":", lw=0.8,
                                   label="1/sqrt(d): random guess")
            if v in OVERLAPS:
                ax.set_ylim(0, 1.02)
            ax.set_xscale("log")
            log_ticks(ax, "x")
            if j >= len(shown) - ncols:
                ax.set_xlabel("time t = k dt" if dt else "step k")
            if col == 0:
                ax.set_ylabel(_label(v))
            title = ", ".join(f"{a}={_fmt_value(ds[a].values[i])}" for a, i in zip(facet_axes, facet))
            if title:
                ax.set_title(title)
    for vi in range(len(var)):
        for j in range(len(shown), nrows * ncols):
            axs[vi * nrows + j // ncols, j % ncols].set_visible(False)
    title = setting_title(ds, reduced="median, min-max band", width=title_width(fig))
    if len(shown) < len(facets):
        left = facets[len(shown):]
        missing = "; ".join(", ".join(f"{a}={_fmt_value(ds[a].values[i])}" for a, i in zip(facet_axes, f)) for f in left)
        title += f"\nNOT SHOWN ({len(left)} of {len(facets)} panels): {missing}"
    fig.suptitle(title)
    legend_outside(fig)
    return fig


def plot_curves(ds, path, *, var=None, max_panels=8):
    """`curves_figure` written to `path` as PNG and PDF."""
    with style():
        return save(curves_figure(ds, var=var, max_panels=max_panels), path)


def heatmap_axes(ds, x=None, y=None, var="rho"):
    """The (x, y) axes of a heatmap: the ones asked for, the missing one filled in from the
    swept axes (never `dynamic`, which makes the columns); None when fewer than two exist."""
    candidates = [a for a in _axes_of(ds, var) if a != "dynamic" and ds.sizes[a] > 1]
    for name, value in (("x", x), ("y", y)):
        if value is not None and value not in candidates:
            raise ValueError(f"--{name}={value!r} is not allowed; choose from the swept axes {candidates}")
    if x is not None and x == y:
        raise ValueError(f"--x and --y are both {x!r}; choose two different axes from {candidates}")
    if x is None and y is None:
        if len(candidates) < 2:
            return None
        return candidates[1], candidates[0]
    if y is None:
        others = [a for a in candidates if a != x]
        return (x, others[0]) if others else None
    if x is None:
        others = [a for a in candidates if a != y]
        return (others[-1], y) if others else None
    return x, y


def heatmap_figure(ds, *, var=None, x=None, y=None):
    """Final value of each `var` over two swept axes (`x`, `y`), mean over seeds, one column
    per dynamic; every cell annotated with its value, one colour bar per row beside the
    panels. Axes other than `x`, `y` and `dynamic` are held at their first value, which the
    title states. Returns None when the dataset has fewer than two swept axes."""
    var = _check_vars(ds, var)
    xy = heatmap_axes(ds, x, y, var[0])
    if xy is None:
        return None
    x, y = xy
    dynamics = list(ds["dynamic"].values) if "dynamic" in ds[var[0]].dims else [None]
    held = {a: 0 for a in _axes_of(ds, var[0]) if a not in (x, y, "dynamic")}
    nx, ny = ds.sizes[x], ds.sizes[y]
    cell = 0.5 if max(nx, ny) <= 8 else 0.35
    fig, axs = plt.subplots(len(var), len(dynamics),
                            figsize=(1.8 + (nx * cell + 1.0) * len(dynamics), 1.0 + (ny * cell + 0.9) * len(var)),
                            layout="constrained", squeeze=False)
    annotate = nx <= 16 and ny <= 16
    cmap = plt.get_cmap(SEQUENTIAL)
    for row, v in enumerate(var):
        final = ds[v].isel(step=-1).isel(held)
        final = abs(final) if v in OVERLAPS else final
        for rep in REPLICATES:
            if rep in final.dims:
                final = final.mean(rep)
        lo, hi = (0.0, 1.0) if v in OVERLAPS else (float(final.min()), float(final.max()))
        im = None
        for col, dyn in enumerate(dynamics):
            ax = axs[row, col]
            da = (final.sel(dynamic=dyn) if dyn is not None else final).transpose(y, x)
            im = ax.imshow(da.values, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap=cmap)
            ax.set_xticks(range(nx), [_fmt_value(val) for val in ds[x].values], rotation=45 if nx > 8 else 0)
            ax.set_yticks(range(ny), [_fmt_value(val) for val in ds[y].values])
            ax.grid(False)
            ax.set_xlabel(x)
            if col == 0:
                ax.set_ylabel(y)
            name = dyn if dyn is not None else setting(ds).get("dynamic", "")
            ax.set_title(f"{name}: final {_label(v)}")
            if annotate:
                size = 7 if max(nx, ny) <= 8 else 5.5
                for (iy, ix), val in np.ndenumerate(da.values):
                    if np.isfinite(val):
                        r, g, b, _ = cmap((val - lo) / (hi - lo) if hi > lo else 0.5)
                        text = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
                        ax.text(ix, iy, f"{val:.2f}", ha="center", va="center", fontsize=size, color=text)
                    else:
                        ax.text(ix, iy, "nan", ha="center", va="center", fontsize=6, color="red")
        fig.colorbar(im, ax=list(axs[row, :]), label=f"final {_label(v)}", shrink=0.9)
    title = setting_title(ds, reduced="mean", width=title_width(fig))
    if held:
        title += "\nheld at: " + ", ".join(
            f"{a}={_fmt_value(ds[a].values[0])} (first of {ds.sizes[a]})" for a in held)
    fig.suptitle(title)
    return fig


def plot_heatmaps(ds, path, x=None, y=None, *, var=None):
    """`heatmap_figure` written to `path` as PNG and PDF; None when there is no heatmap to draw."""
    with style():
        fig = heatmap_figure(ds, var=var, x=x, y=y)
        return None if fig is None else save(fig, path)
