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
    "Spherical Normalized Preconditioned Vanilla Population Empirical Online HermiteFunction TwoLayer "
    "AbstractDynamic AbstractSource AbstractSolver Euler Dopri5 Optax SaveAt Trajectory Reused check_dt "
    "Problem SpikedCovariance MultiSpikeCovariance DenseCovariance AbstractCovariance SingleIndex "
    "Gaussian StudentT Rademacher hermite_function AbstractDynamic.direction AbstractSource.risk"
).split()
PAGES = (
    "getting-started concepts api sweeps results benchmarks decisions extending tutorials/phase_diagram "
    "tutorials/sample_complexity tutorials/inside_jax tutorials/new_dynamic"
).split()


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for page in PAGES:
        assert (site / page / "index.html").exists(), page
    # the worked examples are included from the scripts the tests run, not left as markers
    extending = (site / "extending" / "index.html").read_text()
    assert ">FreshEveryR<" in extending and ">SignSpherical<" in extending and "--8&lt;--" not in extending and "--8<--" not in extending
    api = (site / "api" / "index.html").read_text()
    for name in API:
        assert f'id="spikejax.{name}"' in api, name
    assert "**Arguments:**" not in api and "<strong>Arguments:</strong>" in api  # Markdown docstrings rendered
    bench = (site / "benchmarks" / "index.html").read_text()
    assert "GEMM" in bench or "<table" in bench  # BENCHMARKS.md was included, not a bare marker
    # Nothing is fetched at run time: MathJax is vendored, the theme's web fonts are off.
    import re

    remote = re.compile(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert not remote.search(text), (html, remote.search(text).group(0))
        assert "cdn.jsdelivr" not in text and "fonts.googleapis" not in text, html
    assert 'src="javascripts/mathjax/tex-svg.js"' in (site / "index.html").read_text()
    assert (site / "javascripts" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000


def test_readme_example_runs(capsys):
    """The README's Python example runs as written, and prints what its comments say."""
    import re

    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Example\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    first, second = capsys.readouterr().out.strip().splitlines()
    cos = [float(x) for x in first.strip("[]").split()]
    assert [round(c, 2) for c in cos] == [1.0, 0.69, 0.58]
    rho, cos_u, status = second.split()
    assert float(rho) > 0.999 and float(cos_u) > 0.999 and status == "ok"
