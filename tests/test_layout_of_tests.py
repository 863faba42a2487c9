"""The tests' own layout: what test modules share lives in helper modules, fixtures in conftest."""

import ast

from helpers import ROOT

TESTS = ROOT / "tests"


def imported_test_modules(source: str) -> set[str]:
    """The test modules and conftest that a module's source imports, at its top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.split(".")[0] == "conftest" or name.startswith("test_")}


def test_the_finder_sees_imports_at_the_top_and_inside_functions():
    source = "import test_a\nfrom os import path\ndef f():\n    from conftest import X\n    import helpers\n"
    assert imported_test_modules(source) == {"test_a", "conftest"}


def test_no_module_of_the_tests_imports_a_test_module_or_conftest():
    imports = {path.name: imported_test_modules(path.read_text()) for path in sorted(TESTS.rglob("*.py"))}
    assert {name: sorted(modules) for name, modules in imports.items() if modules} == {}
