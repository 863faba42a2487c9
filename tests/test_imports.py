"""The package's import graph: no circles, the schema a leaf, and planning without the ML stack."""

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "diffaug"
RULES = PACKAGE.parents[1] / "workflow" / "rules"


def imported_modules(source: str) -> set[str]:
    """The diffaug modules that a module's source imports, at its top or inside functions:
    `from .x import`, `from . import x`, `from diffaug.x import`, `import diffaug.x`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("diffaug."):
            names.add(node.module.removeprefix("diffaug."))
        elif isinstance(node, ast.Import):
            names |= {alias.name.removeprefix("diffaug.") for alias in node.names if alias.name.startswith("diffaug.")}
    return {name.split(".")[0] for name in names}


def import_graph() -> dict[str, set[str]]:
    return {path.stem: imported_modules(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports (a list of modules that starts and ends with the same), or None."""
    state: dict[str, str] = {}  # "open" while its imports are walked, then "done"

    def walk(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported]
            if imported not in state and (circle := walk(imported, [*path, imported])):
                return circle
        state[module] = "done"
        return None

    for module in graph:
        if module not in state and (circle := walk(module, [module])):
            return circle
    return None


def test_the_graph_reader_sees_every_kind_of_import_and_finds_a_circle():
    source = "from .a import x\nfrom . import b\ndef f():\n    from diffaug.c import y\n    import diffaug.d.e\n"
    assert imported_modules(source) == {"a", "b", "c", "d"}
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_package_imports_in_no_circle():
    graph = import_graph()
    assert {"schema", "params", "plan", "probes", "splits"} <= set(graph)
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_schema_imports_nothing_of_the_package():
    assert import_graph()["schema"] == set()


def test_what_planning_imports_brings_in_neither_torch_nor_diffusers():
    """The modules that the rule files import, and all that they import at their top, load without the ML stack
    (the workflow tests check a whole `snakemake -n` too)."""
    planning = set()
    for path in RULES.glob("*.smk"):
        planning |= set(re.findall(r"^from diffaug\.(\w+) import", path.read_text(), re.MULTILINE))
    assert {"plan", "params", "probes"} <= planning
    imports = "; ".join(f"import diffaug.{name}" for name in sorted(planning))
    code = f"import sys; {imports}; print(sorted({{'torch', 'diffusers'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
