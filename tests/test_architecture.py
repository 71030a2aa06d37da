"""The package's import graph: no cycles, and the policies below the layers that drive them."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import buttress

SOURCE = Path(buttress.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["buttress", *path.relative_to(SOURCE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in SOURCE.rglob("*.py")}


class _Imports(ast.NodeVisitor):
    """The buttress modules one module imports, wherever it does, but for type checkers."""

    def __init__(self, module: str) -> None:
        is_package = MODULES[module].name == "__init__.py"
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parent = self.package[: len(self.package) - node.level + 1]
            base = ".".join(parent + ([node.module] if node.module else []))
        for alias in node.names:  # a submodule when there is one, else the module itself
            submodule = f"{base}.{alias.name}"
            self.found.add(submodule if submodule in MODULES else base)


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        imports = _Imports(module)
        imports.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = {name for name in imports.found if name in MODULES and name != module}
    return graph


def test_the_graph_is_read_from_every_module() -> None:
    graph = _graph()
    assert "buttress._client" in graph
    assert "buttress.policies.retry" in graph["buttress.transports.retry"]


def test_no_module_imports_itself_back_through_others() -> None:
    try:
        graphlib.TopologicalSorter(_graph()).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"an import cycle: {' -> '.join(exc.args[1])}") from None


# Below never imports above: policies/<x>.py decides, transports/<x>.py drives it, the
# clients (the facade) stack the layers.
ABOVE = {
    "buttress.policies": ("buttress.transports", "buttress.stores", "buttress._client"),
    "buttress.transports": ("buttress._client",),
}


def test_nothing_imports_upwards() -> None:
    for module, imported in _graph().items():
        for below, above in ABOVE.items():
            if module.startswith(below):
                upward = sorted(name for name in imported if name.startswith(above))
                assert upward == [], f"{module} imports {upward}"


# -- size: a newcomer reads a function, and the facade, in one sitting --------------------------

LONGEST_FUNCTION = 60  # lines of code, docstring aside
LONGEST_FACADE = 700  # lines of _client.py


def _is_overload(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(ast.unparse(decorator).endswith("overload") for decorator in function.decorator_list)


def _code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of ``function``."""
    body = function.body
    has_docstring = (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    first = body[1] if has_docstring else body[0]
    assert function.end_lineno is not None
    return function.end_lineno - first.lineno + 1


def test_no_function_is_longer_than_sixty_lines() -> None:
    too_long = {
        f"{module}.{node.name}": lines
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not _is_overload(node)
        and (lines := _code_lines(node)) > LONGEST_FUNCTION
    }
    assert too_long == {}


def test_the_facade_stays_small() -> None:
    lines = len((SOURCE / "_client.py").read_text(encoding="utf-8").splitlines())
    assert lines <= LONGEST_FACADE
