"""Nothing outside the package imports an underscore module of spikejax: scripts, tests and
docs use the public names, `spikejax.plot` and, with no stability promise, `spikejax.internal`."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("experiments", "benchmarks", "tests", "docs")

ALIASES = ("spikejax", "sj")  # how scripts name the package


def _private(name):
    """Whether a dotted module path inside spikejax (`spikejax._x...`) names an underscore module."""
    parts = name.split(".")
    return parts[0] == "spikejax" and any(p.startswith("_") and not p.startswith("__") for p in parts[1:])


def private_imports(source):
    """`(line, module)` of every import of an underscore module of spikejax in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _private(node.module):
                found.append((node.lineno, node.module))
            elif node.module == "spikejax":
                found += [(node.lineno, f"spikejax.{a.name}") for a in node.names if _private(f"spikejax.{a.name}")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ALIASES:
            if _private(f"spikejax.{node.attr}"):  # `sj._io.Store`: the module reached as an attribute
                found.append((node.lineno, f"spikejax.{node.attr}"))
    return found


def test_the_checker_sees_every_form():
    source = (
        "import spikejax._a\nimport spikejax._b as b\nfrom spikejax._c import x\nfrom spikejax import _d, plot\n"
        "from spikejax.plot import style\nfrom spikejax import __version__\nimport spikejax.internal\n"
        "sj._e.Store\nsj.internal.Store\nsj.__version__\n"
    )
    assert [m for _, m in private_imports(source)] == ["spikejax._a", "spikejax._b", "spikejax._c", "spikejax._d",
                                                      "spikejax._e"]


def test_no_underscore_module_is_imported_outside_the_package():
    offenders = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path.resolve() == pathlib.Path(__file__).resolve():
                continue
            offenders += [f"{rel}:{line}: {module}" for line, module in private_imports(path.read_text())]
    assert not offenders, "import public names, spikejax.plot or spikejax.internal instead:\n" + "\n".join(offenders)
