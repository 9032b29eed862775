"""The layering rules of DESIGN §4, read from the source with ``ast``: no import cycle among
gandyn's modules (imports inside functions count, and so does the package ``__init__`` an
import runs), and ``import gandyn`` loads no matplotlib."""

import ast
import subprocess
import sys
from pathlib import Path

from gandyn.experiments import EXPERIMENTS, REGISTRY
from gandyn.plotting.registry import PLOTS

PACKAGE = Path(__file__).resolve().parents[1] / "gandyn"


def _modules() -> dict[str, Path]:
    """Dotted module name → file, packages under their own name (``gandyn.solvers``)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement of module ``name`` (file ``path``) may load: the
    module itself and, for ``from M import x``, ``M.x`` (a submodule if one exists)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def _runs(target: str, importer: str) -> set[str]:
    """The gandyn modules that importing ``target`` executes from ``importer``: ``target``
    and each package on its path, except packages that contain ``importer`` (already
    running when it imports)."""
    parts = target.split(".")
    ran = set()
    for k in range(1, len(parts) + 1):
        module = ".".join(parts[:k])
        if module not in MODULES or module == importer:
            continue
        is_package = MODULES[module].name == "__init__.py"
        if is_package and importer.startswith(module + "."):
            continue
        ran.add(module)
    return ran


def import_graph() -> dict[str, set[str]]:
    """Module → the gandyn modules its import statements (anywhere in it) execute."""
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(name, path, node):
                    edges |= _runs(target, name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports_and_package_inits():
    graph = import_graph()
    # gandyn/__init__.py imports its subpackages; a module inside a package does not
    # "run" that package's __init__ (it is already running)
    assert "gandyn.solvers" in graph["gandyn"]
    assert "gandyn.solvers" not in graph["gandyn.solvers.particles"]
    assert all(target in MODULES for edges in graph.values() for target in edges)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_importing_gandyn_loads_no_matplotlib():
    """Core modules never import matplotlib: ``import gandyn`` (the whole public API) leaves
    it unloaded; only plotting, the CLI's write path and notebooks load it."""
    code = "import sys, gandyn; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_experiment_has_one_name_and_a_plot():
    names = [experiment.name for experiment in EXPERIMENTS]
    assert len(set(names)) == len(names), "experiment names must be unique"
    assert sorted(REGISTRY) == sorted(names)
    assert sorted(PLOTS) == sorted(names), "plots are looked up by experiment name"
