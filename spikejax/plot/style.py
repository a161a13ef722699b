"""The one figure style of spikejax: palette, line styles per dynamic, tick labels, saving.

Every figure of the package goes through this module, so they look alike and stay
readable in print, in greyscale and for colour-blind readers:

- **Colours** are the Okabe-Ito palette (`OKABE_ITO`), safe for the common colour-vision
  deficiencies; heatmaps use `viridis` (`SEQUENTIAL`), perceptually uniform and readable
  in greyscale.
- **Dynamics** are told apart by line style and marker as well as by colour
  (`DYNAMIC_STYLE`, `dynamic_style`). When a second quantity (say `kappa`) also needs a
  colour, `shades(dynamic, k)` gives `k` shades of the dynamic's own hue, light to dark.
- **Log axes** never print overlapping labels: `log_ticks` hides minor-tick labels and,
  on a range under about two and a half decades, puts plain numbers (`20`, `50`, `100`) at 1-2-5
  positions instead of `3x10^1 4x10^1`.
- **Legends** go outside the data (`legend_outside`); **titles** state the setting
  (`setting_title` for a sweep's dataset).
- **Saving**: `save(fig, path)` writes `path` as PNG *and* PDF and closes the figure.

To adopt it in a script:

```python
from spikejax.plot import style

with style.style():                         # or style.apply_style() once, globally
    fig, ax = plt.subplots(layout="constrained")
    for dyn in ("spherical", "normalized"):
        ax.plot(x, y[dyn], label=dyn, **style.dynamic_style(dyn))
    ax.set_xscale("log"); ax.set_yscale("log")
    style.log_ticks(ax, "both")             # after the data are drawn
    style.legend_outside(fig)
    style.save(fig, "out/figure.png")       # out/figure.png and out/figure.pdf
```
"""

from __future__ import annotations

import json
import math
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib import ticker  # noqa: E402

from .._config import SINGLE  # noqa: E402
from .._registry import SOLVERS, SOURCES, constructor_fields  # noqa: E402

# Okabe & Ito (2008), "Color Universal Design"; black and yellow last (yellow is faint on white).
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "purple": "#CC79A7",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
PALETTE = list(OKABE_ITO.values())
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]
SEQUENTIAL = "viridis"

# One look per dynamic: colour, its own light-to-dark colour map, line style and marker.
DYNAMIC_STYLE = {
    "normalized": {"color": OKABE_ITO["blue"], "cmap": "Blues", "linestyle": "-", "marker": "o"},
    "spherical": {"color": OKABE_ITO["vermillion"], "cmap": "Oranges", "linestyle": "--", "marker": "s"},
    "preconditioned": {"color": OKABE_ITO["green"], "cmap": "Greens", "linestyle": "-.", "marker": "^"},
    "vanilla": {"color": OKABE_ITO["purple"], "cmap": "Purples", "linestyle": ":", "marker": "D"},
}

RC = {
    "axes.prop_cycle": cycler(color=PALETTE[:6]) + cycler(linestyle=LINESTYLES[:6]),
    "image.cmap": SEQUENTIAL,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9,
    "figure.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by journals
}


def apply_style() -> None:
    """Set the spikejax style globally (`matplotlib.rcParams`)."""
    matplotlib.rcParams.update(RC)


def style():
    """The spikejax style inside a `with` block only (`matplotlib.rc_context`)."""
    return plt.rc_context(RC)


def _extra_style(index: int) -> dict:
    return {
        "color": PALETTE[(index + 4) % len(PALETTE)],
        "cmap": SEQUENTIAL,
        "linestyle": LINESTYLES[(index + 4) % len(LINESTYLES)],
        "marker": MARKERS[(index + 4) % len(MARKERS)],
    }


def dynamic_style(dynamic, *, marker: bool = False, index: int = 0) -> dict:
    """`plot` keyword arguments (`color`, `linestyle`, optionally `marker`) for a dynamic.

    An unknown name (a user's own dynamic) gets a look of its own from `index`.
    """
    look = DYNAMIC_STYLE.get(str(dynamic)) or _extra_style(index)
    kw = {"color": look["color"], "linestyle": look["linestyle"]}
    if marker:
        kw["marker"] = look["marker"]
    return kw


def shades(dynamic, k: int, *, index: int = 0) -> list:
    """`k` colours of a dynamic's hue from light to dark (a second, ordered quantity)."""
    look = DYNAMIC_STYLE.get(str(dynamic)) or _extra_style(index)
    cmap = matplotlib.colormaps[look["cmap"]]
    if k == 1:
        return [look["color"]]
    lo, hi = (0.1, 0.9) if look["cmap"] == SEQUENTIAL else (0.4, 0.95)
    return [cmap(v) for v in np.linspace(lo, hi, k)]


def _nice_ticks(lo: float, hi: float, max_ticks: int = 7) -> list[float]:
    """Between 2 and `max_ticks` ticks inside [lo, hi]: at 1-2-5 times powers of ten, else
    1-3, 1, or every digit; on a range too short for any of those, linear nice numbers."""
    for mantissas in ((1, 2, 5), (1, 3), (1,), range(1, 10)):
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in mantissas
            if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
        ]
        if 2 <= len(ticks) <= max_ticks:
            return ticks
    linear = ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return [float(t) for t in linear if lo <= t <= hi]


def _plain(v, _pos=None) -> str:
    return f"{v:g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")


def log_ticks(ax, which: str = "x") -> None:
    """Readable tick labels on a log axis of `ax` (`"x"`, `"y"` or `"both"`), after drawing.

    Minor ticks keep their marks and lose their labels (matplotlib labels them on short
    ranges, which prints `3x10^1 4x10^1` on top of each other). Under about 2.5 decades
    the major ticks are plain numbers at 1-2-5 positions; above, one per decade, plain
    between 1e-3 and 1e5.
    """
    for name in ("x", "y") if which == "both" else (which,):
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
        if lo <= 0:
            continue
        axis.set_minor_formatter(ticker.NullFormatter())
        if hi / lo <= 400:
            ticks = _nice_ticks(lo, hi)
            if len(ticks) >= 2:
                axis.set_major_locator(ticker.FixedLocator(ticks))
                axis.set_major_formatter(ticker.FuncFormatter(_plain))
                continue
        axis.set_major_locator(ticker.LogLocator(base=10, numticks=8))
        axis.set_major_formatter(ticker.FuncFormatter(_plain))


def legend_outside(fig, handles=None, labels=None, *, title=None, ncol: int = 1):
    """One legend for the whole figure, to the right of the panels and centred on them
    (needs a `layout="constrained"` figure): the data and the title are never covered.
    Give the figure at least `legend_height(entries)` inches of height."""
    if handles is None:
        seen = {}
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)
        labels, handles = list(seen), list(seen.values())
    if not handles:
        return None
    return fig.legend(handles, labels, loc="outside right center", title=title, ncol=ncol)


def legend_height(entries: int, ncol: int = 1) -> float:
    """Inches a legend of `entries` lines in `ncol` columns needs (at the style's font size)."""
    return 0.4 + 0.19 * math.ceil(entries / ncol)


def save(fig, path) -> str:
    """Write `fig` as PNG and PDF (`path` with each suffix), close it, return the PNG path."""
    root, _ = os.path.splitext(os.fspath(path))
    directory = os.path.dirname(root)
    if directory:
        os.makedirs(directory, exist_ok=True)
    png = root + ".png"
    fig.savefig(png)
    fig.savefig(root + ".pdf")
    plt.close(fig)
    return png


def _information_exponent(link):
    try:
        from .._hermite import hermite_function

        return hermite_function(str(link)).information_exponent()
    except Exception:  # a name the built-ins do not know: leave s out of the title
        return None


def title_width(fig) -> int:
    """Characters a line of the figure's title may hold at the style's title size."""
    return max(40, int(fig.get_figwidth() * 72 / (0.55 * RC["figure.titlesize"])) - 4)


def setting(ds) -> dict:
    """The fixed settings of a sweep's dataset, from its resolved config (attribute `config`):
    key -> value for every key with one value; swept keys (dimensions) are left out."""
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, ValueError):
        config = {}
    out = {}
    for key, values in config.items():
        if key in ds.dims or (key == "seeds" and "seed" in ds.dims):
            continue
        if isinstance(values, list) and len(values) == 1:
            out[key] = values[0]
        elif not isinstance(values, list):
            out[key] = values
    return out


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def setting_title(ds, *, reduced: str = "", extra=(), width: int = 100) -> str:
    """A title that states a sweep's setting: dimension, spike, link (with its information
    exponent `s`), activation, source and sample size, loss, step, seeds (and how they are
    `reduced`), then `extra` items; wrapped at `width` characters."""
    fixed = setting(ds)
    parts = []
    d = "d swept" if "d" in ds.dims else f"d={_fmt(fixed.get('d', '?'))}"
    parts.append(d)
    for key in ("kappa", "r2", "r1"):
        if key in fixed and fixed[key] is not None and key not in ds.dims:
            parts.append(f"{key}={_fmt(fixed[key])}")
    link = fixed.get("link")
    target = fixed.get("target")
    if target not in (None, SINGLE):  # a multi-index target: its link key does not apply
        parts.append(f"{target} target" + (f" (k={fixed['k']})" if fixed.get("k") is not None else ""))
    elif link is not None:
        s = _information_exponent(link)
        parts.append(f"{link} link" + (f" (s={s})" if s else ""))
    elif "link" in ds.dims:
        parts.append("link swept")
    if fixed.get("activation") is not None:
        parts.append(f"{fixed['activation']} activation")
    source = fixed.get("source")
    if source is not None:  # with its size: the registered class's `n` or `batch` field
        sizes = [k for k in ("n", "batch") if source in SOURCES and k in constructor_fields(SOURCES[source])]
        count = "".join(f" {k}={_fmt(fixed[k])}" for k in sizes if fixed.get(k) is not None)
        parts.append(f"{source} source{count}")
    if fixed.get("loss") is not None:
        parts.append(f"{fixed['loss']} loss")
    if fixed.get("noise"):
        parts.append(f"noise={_fmt(fixed['noise'])}")
    solver = fixed.get("solver", "euler")
    if solver == "auto" and fixed.get("source", "population") in SOURCES:
        solver = SOURCES[fixed.get("source", "population")].default_solver
    if fixed.get("dt") is not None and fixed.get("steps") is not None:
        if solver in SOLVERS and SOLVERS[solver].adaptive:
            parts.append(f"flow to T={_fmt(fixed['dt'] * fixed['steps'])} ({SOLVERS[solver].__name__}, "
                         f"rtol {fixed.get('rtol', 1e-6):g})")
        else:
            parts.append(f"dt={_fmt(fixed['dt'])}, {fixed['steps']} steps")
    seeds = ds.sizes.get("seed", 1)
    parts.append(f"{seeds} seed{'s' if seeds != 1 else ''}" + (f" ({reduced})" if reduced else ""))
    parts.extend(extra)
    return "\n".join(textwrap.wrap(", ".join(parts), width=width))

