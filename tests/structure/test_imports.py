"""The shape of the package: no import circle, no arrow running back up the layers, and every
import inside a function says why it is there.

Run as a script for the counts: ``python tests/structure/test_imports.py [PACKAGE_DIR]``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "roofseg"

#: bottom to top: a module may import from its own layer (without circles) and the layers below
LAYERS: list[tuple[str, ...]] = [
    ("roofseg", "roofseg._env", "roofseg._tf", "roofseg.errors"),
    (
        "roofseg.terminal",
        "roofseg.devices",
        "roofseg.atomic",
        "roofseg.locks",
        "roofseg.readahead",
        "roofseg.outputs",
        "roofseg.runners",
        "roofseg.figures",
    ),
    ("roofseg.contracts",),
    ("roofseg.stac", "roofseg.scenes", "roofseg.xyz"),
    ("roofseg.raster",),
    ("roofseg.tiler", "roofseg.pipeline", "roofseg.sample"),
    ("roofseg.training",),
    ("roofseg.export", "roofseg.sources"),
    ("roofseg.prediction.options",),
    ("roofseg.prediction.rasters",),
    ("roofseg.prediction.vector",),
    ("roofseg.prediction.request",),
    ("roofseg.prediction.scoring", "roofseg.prediction.adapt"),
    ("roofseg.prediction.job",),
    ("roofseg.prediction.beam",),
    ("roofseg.prediction.many", "roofseg.prediction"),
    ("roofseg.review",),
    ("roofseg.cli",),
]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name → file of every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(root: Path = ROOT) -> tuple[dict[str, set[str]], list[tuple[str, int, bool]]]:
    """The import graph (module → the package's modules it imports, at the top or in a function),
    and each import made inside a function: (file:line, whether a comment says why)."""
    mods = modules(root)
    graph: dict[str, set[str]] = defaultdict(set)
    local: list[tuple[str, int, bool]] = []
    for name, path in mods.items():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        in_function = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)
            if isinstance(n, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            if id(node) in in_function:
                local.append((f"{path}:{node.lineno}", node.lineno, _explained(lines, node.lineno)))
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph, local


def _explained(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on the lines just above it (over the imports of its block)."""
    i = lineno - 1
    comment = lines[i].partition("#")[2].strip()
    if comment and not comment.startswith("noqa"):
        return True
    while i > 0:
        i -= 1
        text = lines[i].strip()
        if text.startswith("#"):
            return True
        if not (text.startswith(("import ", "from ")) or text.endswith((",", "(")) or text == ")"):
            return False
    return False


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_of(module: str, mods: dict[str, Path]) -> str:
    """The package a module belongs to (a package is its own)."""
    return module if mods[module].name == "__init__.py" else module.rpartition(".")[0]


def package_graph(graph: dict[str, set[str]], mods: dict[str, Path]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            pa, pb = package_of(a, mods), package_of(b, mods)
            # a package's own face (its __init__) does not tie it to its subpackages
            if pa != pb and not pb.startswith(pa + ".") and not pa.startswith(pb + "."):
                out[pa].add(pb)
    return out


def layer_of(module: str) -> int | None:
    """The layer of the longest prefix of ``module`` named in LAYERS (None: placed nowhere)."""
    best, depth = None, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                if prefix == "roofseg" and module != "roofseg":
                    continue  # the package's face only: every other module must be placed
                best, depth = i, prefix.count(".")
    return best


def backward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{a} -> {b}"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)
    ]


def test_every_module_has_a_layer():
    assert [m for m in modules() if layer_of(m) is None] == []


def test_no_import_circle_between_modules():
    graph, _ = imports()
    assert circles(graph) == []


def test_no_import_circle_between_packages():
    graph, _ = imports()
    assert circles(package_graph(graph, modules())) == []


def test_no_arrow_runs_back_up_the_layers():
    graph, _ = imports()
    assert backward_arrows(graph) == []


def test_every_import_inside_a_function_says_why():
    _, local = imports()
    assert [where for where, _, explained in local if not explained] == []


def tensorflow_importers(root: Path = ROOT) -> list[str]:
    """The modules other than roofseg._tf that import TensorFlow or tf-keras themselves."""
    out = []
    for name, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if name != "roofseg._tf" and any(n.split(".")[0] in ("tensorflow", "tf_keras") for n in names):
                out.append(f"{name}:{node.lineno}")
    return out


def test_only_roofseg_tf_imports_tensorflow():
    # imported anywhere else first, TensorFlow loads before roofseg._tf sets its environment and
    # quiets its native start-up logs (ship-base printed oneDNN's and CUDA's lines)
    assert tensorflow_importers() == []


def test_the_checks_catch_a_circle_and_a_backward_arrow(tmp_path):
    pkg = tmp_path / "roofseg"
    (pkg / "raster").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "raster" / "__init__.py").write_text("")
    (pkg / "raster" / "a.py").write_text("from roofseg.raster.b import x\n")
    (pkg / "raster" / "b.py").write_text("def f():\n    from roofseg.raster.a import y\n")
    (pkg / "training.py").write_text("")
    (pkg / "raster" / "c.py").write_text("import roofseg.training\n")
    graph, local = imports(pkg)
    assert circles(graph) == [["roofseg.raster.a", "roofseg.raster.b"]]
    assert backward_arrows(graph) == ["roofseg.raster.c -> roofseg.training"]
    assert [explained for _, _, explained in local] == [False]


def report(root: Path) -> None:
    """The counts the structure is judged by, for any checkout of the package."""
    mods = modules(root)
    graph, local = imports(root)
    sizes = {name: len(path.read_text().splitlines()) for name, path in mods.items()}
    functions = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
    print(f"modules: {len(mods)}")
    print(f"circles between modules: {circles(graph)}")
    print(f"circles between packages: {circles(package_graph(graph, mods))}")
    print(f"arrows back up the layers: {backward_arrows(graph)}")
    print(f"imports inside functions: {len(local)}, without a comment saying why: {sum(not e for _, _, e in local)}")
    print(f"largest module: {max(sizes, key=sizes.get)} ({max(sizes.values())} lines)")
    print("largest function: {1} ({0} lines)".format(*max(functions)))


if __name__ == "__main__":
    report(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
