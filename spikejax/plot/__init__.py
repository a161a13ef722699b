"""Figures of spikejax: the demo, a sweep's curves and heatmaps, and their one style.

`plot_*` writes a figure as PNG and PDF and returns the PNG's path; `*_figure` returns
the matplotlib figure. `spikejax.plot.style` is the palette, line styles, tick labels and
saving that every figure uses, for scripts to draw their own figures alike.
"""

from . import style as style
from ._figures import (
    curves_figure as curves_figure,
    demo_figure as demo_figure,
    heatmap_axes as heatmap_axes,
    heatmap_figure as heatmap_figure,
    plot_curves as plot_curves,
    plot_demo as plot_demo,
    plot_heatmaps as plot_heatmaps,
)
