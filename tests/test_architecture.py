"""The package's shape: its imports run one way, functions stay short, and the dataset's
variable descriptions are the ones docs/sweeps.md shows."""

import ast
from pathlib import Path

import spikejax as sj
from spikejax.internal import variables_table

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "spikejax"
MAX_FUNCTION_LINES = 80


def _modules() -> dict:
    """Dotted module name -> parsed tree, for every module of the package."""
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = (path, ast.parse(path.read_text()))
    return out


def import_graph() -> dict:
    """module -> the package modules it imports (at top level or inside functions alike);
    the package's own `__init__` is not an edge (every module sits below it)."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, (path, tree) in mods.items():
        base = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                parent = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1]) if node.level else ""
                target = (f"{parent}.{node.module}" if parent else node.module) if node.module else parent
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[m] |= {n for n in names if n in mods and n not in (m, "spikejax")}
    return graph


def circles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_a_planted_circle():
    graph = import_graph()
    graph["spikejax._grid"] = graph["spikejax._grid"] | {"spikejax._sweep"}  # _sweep imports _grid already
    assert any({"spikejax._grid", "spikejax._sweep"} <= set(c) for c in circles(graph))


def test_the_package_imports_run_one_way():
    assert circles(import_graph()) == []


def test_no_function_is_longer_than_80_lines():
    long = [f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in _modules().values() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_docs_show_the_datasets_variable_descriptions():
    """docs/sweeps.md's metrics table is `variables_table()`, written from the one table the
    datasets' `long_name`/`description` attributes read."""
    text = (ROOT / "docs" / "sweeps.md").read_text()
    start, end = "<!-- variables:start -->\n", "\n<!-- variables:end -->"
    assert text.split(start, 1)[1].split(end, 1)[0] == variables_table()
    ds = sj.sweep(dict(d=8, kappa=1.0, steps=4, record=2), progress=False)
    for name in sj.METRICS:
        assert ds[name].attrs["long_name"] in variables_table()
    assert "error" in ds["status"].attrs["description"]


def registered_name_comparisons(source: str, names: set) -> list:
    """`(line, name)` of every comparison of a value with a registered name (`x == "online"`,
    `x in ("plain", "sigma")`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                found += [(node.lineno, c.value) for c in items
                          if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in names]
    return found


def test_no_registered_name_is_compared_outside_the_registry():
    """Names become objects in `_registry.py`; everywhere else code asks the object. The
    built-in link functions are defined by name in `_hermite.py` (the functions' own table)."""
    from spikejax.internal import REGISTRY_KINDS

    names = {name for table, _ in REGISTRY_KINDS.values() for name in table} | {"single_index"}
    assert registered_name_comparisons('if x == "online" or y in ("plain", "h9"): pass', names) == [
        (1, "online"), (1, "plain")]
    found = [f"{path.name}:{line}: {name!r}" for path, tree in _modules().values()
             if path.name not in ("_registry.py", "_hermite.py")
             for line, name in registered_name_comparisons(path.read_text(), names)]
    assert found == []
