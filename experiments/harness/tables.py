"""Table cells shared by the claims: numbers, and the words of the step/horizon checks."""

from __future__ import annotations

import numpy as np


def fmt(x, nd=2):
    """A number for a table: `nd` decimals, `n/a` when missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def sig(x):
    """A number to 3 significant digits, `n/a` when missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def interval(r, nd=2) -> str:
    """`eta [lo, hi]` of a fit `r`."""
    return f"{fmt(r['eta'], nd)} [{fmt(r['lo'], nd)}, {fmt(r['hi'], nd)}]"


def check_word(ok, base=0.0):
    """A cell's step/horizon check: not run, nothing to check, ok or NOT CONVERGED."""
    if ok is None:
        return "not run"
    if base is None or not np.isfinite(base):
        return "no n* to check"
    return "ok" if ok else "NOT CONVERGED"


def ok_cell(h):
    return "n/a (no n*)" if not np.isfinite(h["base"]) else ("yes" if h["ok"] else "NO")


def pass_line(hs):
    """How many checked cells pass, among those with a base n*."""
    have = [h for h in hs if np.isfinite(h["base"])]
    bad = [h for h in have if not h["ok"]]
    none = len(hs) - len(have)
    text = f"{len(have) - len(bad)} of {len(have)} cells with an n* pass"
    if none:
        text += f" ({none} without an n* on the grid: nothing to check)"
    if bad:
        return text + ("; the cells marked NO are not converged in the step/horizon at their largest d, and their n* "
                       "are read as such (see the verdicts).")
    return text + ": each of their n* is converged in the step and the horizon."


def window_cell(h):
    w = h.get("window") or ()
    return f"{w[0]:.0f}-{w[1]:.0f}" if len(w) == 2 else "-"


def rerun_cell(x, h):
    """A rerun's n*: `<=` at the window's bottom, `>` past its top."""
    w = h.get("window") or ()
    if x is None or not np.isfinite(x):
        return f">{w[1]:.0f}" if len(w) == 2 else "n/a"
    return ("<=" if len(w) == 2 and x <= w[0] else "") + f"{x:.0f}"


def check_row(h, *cells) -> str:
    """A row of a step/horizon check table: `cells`, then base, 2x steps, dt/2, window and ok."""
    return ("| " + " | ".join(str(c) for c in cells) + f" | {fmt(h['base'], 0)} | {rerun_cell(h['longer'], h)} | "
            f"{rerun_cell(h['finer'], h)} | {window_cell(h)} | {ok_cell(h)} |")
