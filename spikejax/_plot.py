"""Figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_demo(curves, kappas, dt, path, d=None):
    """`|cos(w, u)|` against time, one colour per `kappa`, solid `normalized`, dashed
    `spherical`; seed median with a min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(kappas)))
    for dynamic, style in (("normalized", "-"), ("spherical", "--")):
        steps, cos = curves[dynamic]
        t = np.maximum(steps * dt, dt / 2)
        for i, kappa in enumerate(kappas):
            c = cos[i]
            ax.plot(t, np.median(c, 0), style, color=colours[i], label=f"{dynamic}, kappa={kappa:g}")
            ax.fill_between(t, c.min(0), c.max(0), color=colours[i], alpha=0.15)
    if d is not None:
        ax.axhline(1 / np.sqrt(d), color="grey", lw=0.8, ls=":", label="1/sqrt(d)")
    ax.set_xscale("log")
    ax.set_xlabel("time t = k dt")
    ax.set_ylabel("|cos(w, u)|")
    ax.set_title("Population flows at theta = u (ReLU, h2 link): spherical stalls, normalized recovers u")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _final_abs(ds, var):
    """|metric| at the last recorded step (even links make the sign of w arbitrary)."""
    return abs(ds[var].isel(step=-1))


def _reduce_to(da, keep):
    """Mean over seeds; first value of every other axis not kept (noted in the title)."""
    if "seed" in da.dims:
        da = da.mean("seed")
    fixed = {}
    for dim in list(da.dims):
        if dim not in keep:
            fixed[dim] = da[dim].values[0]
            da = da.isel({dim: 0})
    return da, fixed


def plot_heatmaps(ds, path, x=None, y=None):
    """Final |rho| and |cos_u| over two swept axes, one column per dynamic, mean over seeds."""
    numeric = [d for d in ds["rho"].dims if d not in ("seed", "step", "dynamic") and ds[d].size > 1]
    if x is None or y is None:
        if len(numeric) < 2:
            return None
        y, x = numeric[0], numeric[1]
    dynamics = list(ds["dynamic"].values) if "dynamic" in ds.dims else [None]
    fig, axes = plt.subplots(2, len(dynamics), figsize=(4.2 * len(dynamics), 7), squeeze=False)
    for j, dyn in enumerate(dynamics):
        sub = ds if dyn is None else ds.sel(dynamic=dyn)
        for i, var in enumerate(("rho", "cos_u")):
            da, fixed = _reduce_to(_final_abs(sub, var), (y, x))
            da = da.transpose(y, x)
            ax = axes[i, j]
            im = ax.imshow(da.values, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma")
            ax.set_xticks(range(ds[x].size), [f"{v:.3g}" for v in ds[x].values], fontsize=7)
            ax.set_yticks(range(ds[y].size), [f"{v:.3g}" for v in ds[y].values], fontsize=7)
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            name = dyn or ds.attrs.get("fixed_dynamic", "")
            extra = ", ".join(f"{k}={v}" for k, v in fixed.items())
            ax.set_title(f"{name}: final |{var}|" + (f"\n({extra})" if extra else ""), fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(ds, path, max_lines=12):
    """|rho| and |cos_u| against step, seed median with min-max band, and the 1/sqrt(d) line."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    others = [d for d in ds["rho"].dims if d not in ("seed", "step")]
    stacked = ds.stack(config=others) if others else ds.expand_dims(config=[0])
    n = min(stacked.sizes["config"], max_lines)
    colours = plt.cm.viridis(np.linspace(0, 0.9, n))
    steps = np.maximum(ds["step"].values, 0.5)
    for ax, var in zip(axes, ("rho", "cos_u")):
        for c in range(n):
            da = abs(stacked[var].isel(config=c))
            da = da.transpose("seed", "step") if "seed" in da.dims else da.expand_dims(seed=[0])
            label = ", ".join(f"{k}={stacked[k].values[c]}" for k in others) if others else None
            ax.plot(steps, np.nanmedian(da.values, 0), color=colours[c], label=label, lw=1.2)
            ax.fill_between(steps, np.nanmin(da.values, 0), np.nanmax(da.values, 0), color=colours[c], alpha=0.15)
        d = ds["d"].values if "d" in ds.dims else [int(ds.attrs.get("fixed_d", 0) or 0)]
        for dv in np.atleast_1d(d):
            if dv:
                ax.axhline(1 / np.sqrt(dv), color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(f"|{var}|")
        ax.set_ylim(0, 1.02)
    axes[0].set_title("dotted: random guess 1/sqrt(d)", fontsize=8)
    if others:
        axes[1].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
