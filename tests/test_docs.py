"""The documentation site builds with `mkdocs build --strict` (`make docs`).

The `test` extra installs mkdocs, mkdocs-material and mkdocstrings, so this test runs
wherever the suite runs (about 2 s). Strict mode fails on any warning: a broken link or
anchor, a missing include, a name the API page cannot resolve.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

API = (
    "simulate make_problem sweep load_results search_n bootstrap_exponent critical_n fit_readout learn "
    "Spherical Normalized Preconditioned Vanilla Population Empirical Online HermiteFunction TwoLayer"
).split()


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for page in ("getting-started", "concepts", "api", "sweeps", "results", "benchmarks", "decisions"):
        assert (site / page / "index.html").exists(), page
    api = (site / "api" / "index.html").read_text()
    for name in API:
        assert f'id="spikejax.{name}"' in api, name
    assert "**Arguments:**" not in api and "<strong>Arguments:</strong>" in api  # Markdown docstrings rendered
    bench = (site / "benchmarks" / "index.html").read_text()
    assert "GEMM" in bench or "<table" in bench  # BENCHMARKS.md was included, not a bare marker
