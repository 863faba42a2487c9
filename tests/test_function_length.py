"""No function of the package is over LIMIT lines, counted from its def line to its last, docstring included."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "diffaug"
LIMIT = 50


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int, int]]:
    """(name, line, lines) of each function in `source` (methods and nested ones too) over `limit` lines."""
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= limit
    ]


def test_a_function_counts_from_its_def_line_to_its_last():
    body = "    x = 1\n"
    source = "def fits():\n" + body * 49 + "\nclass A:\n    @property\n    def method(self):\n" + f"    {body}" * 50
    assert long_functions(source) == [("method", 54, 51)]
    assert long_functions(source, limit=51) == []


def test_no_function_of_the_package_is_over_the_limit():
    found = [
        f"{path.name}:{line} {name} ({lines} lines)"
        for path in sorted(PACKAGE.glob("*.py"))
        for name, line, lines in long_functions(path.read_text())
    ]
    assert not found, f"split these along their seams (at most {LIMIT} lines each): " + "; ".join(found)
