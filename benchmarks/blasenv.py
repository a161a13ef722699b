"""Clean the BLAS environment of a benchmark's own process, before numpy is imported.

`OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` override OpenBLAS's kernel choice and blocking:
with `OPENBLAS_CORETYPE=Prescott` (or `Core2`) this machine's matrix-vector products run
2.5-4x slower and its GEMM 2.5-3x slower (measured, `diagnose_numpy.py`). A benchmark
imports this module first; it removes both variables, re-executing the interpreter when
numpy is already loaded (the variables are read once, when OpenBLAS loads). Tests and CI
never import it: only the benchmark scripts do.
"""

from __future__ import annotations

import os
import sys

VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MARK = "SPIKEJAX_BENCH_UNSET"


def clean():
    """Unset `VARS` in this process (re-exec if numpy is already imported). Returns the
    variables that were removed, as `NAME=value` strings (recorded beside every table)."""
    found = [f"{v}={os.environ[v]}" for v in VARS if v in os.environ]
    if os.environ.get("SPIKEJAX_BENCH_KEEP_BLAS_ENV"):  # diagnose_numpy.py's child measures their effect
        return []
    if not found:
        return [s for s in os.environ.get(_MARK, "").split(";") if s]
    for v in VARS:
        os.environ.pop(v, None)
    os.environ[_MARK] = ";".join(found)
    if "numpy" in sys.modules:  # OpenBLAS already read them: start again without them
        os.execv(sys.executable, [sys.executable] + sys.argv)
    return found


UNSET = clean()
