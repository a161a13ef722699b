"""One module per claim or experiment kind; the config's `kind` picks it (`MODULES`).

Every claim module has the same small interface:

- `KIND`: the config kind it runs;
- `units(cfg) -> int`: progress units of a run (for the bar and for ordering parallel work);
- `run(cfg, docs, bar) -> dict`: run, write `docs/data/<name>.json`, then render it;
- `plot(out, docs)`: its figures from stored data, no runs;
- `table(out) -> str`: its results.md block `<name>`.

Rendering is `harness.io.show(out, docs, plot, table)`, unless a module defines its own
`render(out, docs)` (passage, whose figures depend on the config).

Optional: `check(cfg, docs, bar)` and `check_units(cfg)` (`--checks-only`: the step/horizon checks
of a committed table), `refit(out) -> dict` (`--render --refit`), `MEMO_GROUP = True` (its configs
share one process's memo in a parallel run). A claim module never imports another: what two
claims share lives in `experiments/harness/` or `experiments/theory.py`.
"""

from __future__ import annotations

import importlib

MODULES = dict(scaling="scaling", init_alignment="init_alignment", preconditioning="preconditioning",
               spherical_failure="spherical_failure", passage="passage", fullbatch="fullbatch",
               spherical_vs_normalized="spherical_vs_normalized", three_stage="three_stage",
               nongaussian_failure="nongaussian_failure")
KINDS = tuple(MODULES)


def claim(kind: str):
    """The module of a config kind.

    **Raises:** `ValueError` naming the kind when no claim module runs it."""
    if kind not in MODULES:
        raise ValueError(f"kind={kind!r} is not allowed; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"{__name__}.{MODULES[kind]}")
