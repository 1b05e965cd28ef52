"""The import boundaries docs/architecture.md states, read from its rule table and checked with ``ast``.

Imports under ``if TYPE_CHECKING:`` are annotations only and never count; an import inside a function
(lazy) counts against the rule unless the rule's "inside a function" column allows it."""

from __future__ import annotations

import ast
import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"
PACKAGES = ("fleet", "fleet_oip", "services")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. services.gateway.gateway
    name: str  # what it imports, e.g. services.registry.client.RegistryClient
    lazy: bool  # inside a function
    line: int


@dataclass(frozen=True)
class Rule:
    number: str
    modules: tuple[str, ...]  # patterns of importing modules; "!pattern" leaves modules out
    forbidden: tuple[str, ...]
    unless: tuple[str, ...]
    lazy_unless: tuple[str, ...]

    def governs(self, module: str) -> bool:
        included = [p for p in self.modules if not p.startswith("!")]
        excluded = [p[1:] for p in self.modules if p.startswith("!")]
        return any(_matches(module, p) for p in included) and not any(_matches(module, p) for p in excluded)

    def breaks(self, imp: Import) -> bool:
        if not any(_matches(imp.name, p) for p in self.forbidden):
            return False
        allowed = self.unless + (self.lazy_unless if imp.lazy else ())
        return not any(_matches(imp.name, p) for p in allowed)


def _matches(name: str, pattern: str) -> bool:
    """``pattern`` names a module and everything under it (fnmatch wildcards; ``stdlib``: the standard library)."""
    if pattern == "stdlib":
        return name.split(".")[0] in sys.stdlib_module_names or name.startswith("__future__")
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def _cells(text: str) -> tuple[str, ...]:
    return tuple(c.strip().strip("`") for c in text.split(",") if c.strip() and c.strip() != "-")


def doc_rules(text: str) -> list[Rule]:
    """The rows of the table under '## Import rules' (| # | modules | may not import | unless | inside a function |)."""
    section = text.split("## Import rules", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # header and separator out
    rules = []
    for row in rows:
        number, modules, forbidden, unless, lazy = (c.strip() for c in row.strip("|").split("|"))
        rules.append(Rule(number, _cells(modules), _cells(forbidden), _cells(unless), _cells(lazy)))
    return rules


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str = "") -> list[Import]:
    """``module``: the dotted name ``path`` has (default: from its place in the repository)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, inner, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                found.extend(Import(module, f"{base}.{a.name}", inner, child.lineno) for a in child.names)
            else:
                visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def all_imports() -> list[Import]:
    return [imp for package in PACKAGES for path in sorted((REPO_ROOT / package).rglob("*.py"))
            for imp in imports_of(path)]


RULES = doc_rules(DOC.read_text(encoding="utf-8"))


def test_the_doc_states_rules() -> None:
    assert len(RULES) >= 8
    assert all(rule.modules and rule.forbidden for rule in RULES)


@pytest.mark.parametrize("rule", RULES, ids=[f"rule-{r.number}" for r in RULES])
def test_import_rule_holds(rule: Rule) -> None:
    governed = [imp for imp in all_imports() if rule.governs(imp.module)]
    assert governed, f"rule {rule.number} governs no module: {rule.modules}"
    broken = [f"{imp.module}:{imp.line} imports {imp.name}{' (in a function)' if imp.lazy else ''}"
              for imp in governed if rule.breaks(imp)]
    assert not broken, f"docs/architecture.md rule {rule.number} broken:\n" + "\n".join(broken)


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    """A module written to break rules: module-level and lazy imports are found, TYPE_CHECKING ones are not."""
    fake = tmp_path / "probe.py"
    fake.write_text("from typing import TYPE_CHECKING\nimport numpy as np\nfrom . import base\n"
                    "if TYPE_CHECKING:\n    import cv2\n"
                    "def f():\n    from services.gateway import gateway\n", encoding="utf-8")
    found = imports_of(fake, "services.tasks.probe")
    names = {(imp.name, imp.lazy) for imp in found}
    assert ("numpy", False) in names and ("services.tasks.base", False) in names
    assert ("services.gateway.gateway", True) in names and not any(n == "cv2" for n, _ in names)
    tasks_rule = next(r for r in RULES if r.governs("services.tasks.probe") and "*" in r.forbidden)
    assert tasks_rule.breaks(next(i for i in found if i.name == "numpy"))
    assert not tasks_rule.breaks(next(i for i in found if i.name == "services.tasks.base"))
    assert not tasks_rule.breaks(next(i for i in found if i.lazy))  # the rule lets tasks import lazily
    core = next(r for r in RULES if r.governs("services.gateway.gateway") and "fastapi" in r.forbidden)
    assert core.breaks(Import("services.gateway.gateway", "fastapi.FastAPI", True, 1))
    assert core.breaks(Import("services.gateway.gateway", "grpc.aio", False, 1))


# ---- edges name no task ---------------------------------------------------------------------------------------
#: The edges (docs/architecture.md, "Tasks: one home per task"): the gateway's protocol front ends and the CLI.
EDGES = ("services.gateway.http", "services.gateway.oip", "services.gateway.*servicer", "services.gateway.streaming",
         "fleet.cli", "fleet.client")
#: What of ``services.tasks`` an edge may import: the registry and the base class's vocabulary.
EDGE_TASK_IMPORTS = ("registry", "base")
TASKS_DIR = REPO_ROOT / "services" / "tasks"


def _task_modules() -> set[str]:
    """services.tasks' submodules an edge may not import: the tasks, their helpers, their HTTP routes."""
    found = {p.stem for p in TASKS_DIR.glob("*.py")} | {p.parent.name for p in TASKS_DIR.glob("*/__init__.py")}
    return found - {"__init__", *EDGE_TASK_IMPORTS}


def _task_words() -> set[str]:
    """Every registered task's names: model.json's task_type, the Roboflow name, the /infer/<route>."""
    from services.tasks import registry  # noqa: PLC0415 - registers the built-in tasks

    return {w for t in registry.all_tasks() for w in (t.name, t.roboflow_task, t.route) if w}


def task_namings(path: Path, module: str = "") -> list[str]:
    """Where a module names a task: it imports a task's module (``services.tasks.ocr``, lazily too), or holds a
    string literal that is a task's name, Roboflow name or route (``"object-detection"``)."""
    modules, words = _task_modules(), _task_words()
    found = [f"{imp.module}:{imp.line} imports {imp.name}" for imp in imports_of(path, module)
             if imp.name.split(".")[:2] == ["services", "tasks"] and imp.name.count(".") >= 2
             and imp.name.split(".")[2] in modules]
    found += [f"{module or _module_name(path)}:{node.lineno} says {node.value!r}"
              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
              if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words]
    return found


def _edge_paths() -> list[Path]:
    paths = [p for package in ("fleet", "services") for p in sorted((REPO_ROOT / package).rglob("*.py"))]
    return [p for p in paths if any(_matches(_module_name(p), pattern) for pattern in EDGES)]


def test_edges_name_no_task() -> None:
    """An edge finds tasks through the registry; a task's routes, renderings and flags live in its module."""
    paths = _edge_paths()
    assert any(_module_name(p) == "services.gateway.http.app" for p in paths) and len(paths) > 10
    named = [n for p in paths for n in task_namings(p)]
    assert not named, "edges that name a task (move it into services/tasks/, ask the registry):\n" + "\n".join(named)


def test_the_edge_check_sees_task_names(tmp_path: Path) -> None:
    fake = tmp_path / "probe.py"
    fake.write_text("from services.tasks import registry, Task\nfrom services.tasks.base import Json\n"
                    "from services.tasks.ocr import NAME\nfrom services.tasks import detection\n"
                    "def f():\n    from services.tasks.http.promptable import router\n"
                    "ROUTE = 'object_detection'\nWORDS = 'an object-detection model'\n", encoding="utf-8")
    found = task_namings(fake, "services.gateway.http.probe")
    assert [f.split(" ", 1)[1] for f in found] == [
        "imports services.tasks.ocr.NAME", "imports services.tasks.detection",
        "imports services.tasks.http.promptable.router", "says 'object_detection'"], found


# ---- edges state no task's options ----------------------------------------------------------------------------
#: fleet.client's ``build_parameters`` is the typed Python API: one keyword per field of the public
#: InferenceParameters message, whatever the task; it states no flag and no OIP request parameter.
OPTION_EDGES_EXEMPT = ("fleet.client",)


def _option_words() -> set[str]:
    """Every task-declared option as an edge spells it: ``fleet infer``'s flags (``Task.cli_parameters``) and OIP's
    request parameters (``Task.oip_request_parameters``)."""
    from services.tasks import registry  # noqa: PLC0415 - registers the built-in tasks

    return ({p.flag for t in registry.all_tasks() for p in t.cli_parameters}
            | {p.name for t in registry.all_tasks() for p in t.oip_request_parameters})


def option_namings(path: Path, module: str = "") -> list[str]:
    """Where a module states a task's option itself: a string literal that is a declared flag or OIP request
    parameter (``"--iou"``, ``"iou_threshold"``)."""
    words = _option_words()
    return [f"{module or _module_name(path)}:{node.lineno} says {node.value!r}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words]


def test_the_tasks_declare_the_nms_options() -> None:
    """What the edges used to state themselves (the CLI's NMS flags, OIP's request parameters) is declared."""
    words = _option_words()
    assert {"--iou", "--max-detections", "--class", "--agnostic", "--top-k", "--mask-format"} <= words
    assert {"iou_threshold", "max_detections", "max_candidates", "class_filter", "class_agnostic_nms"} <= words


def test_edges_state_no_task_option() -> None:
    """An edge offers the options the tasks declare (it iterates over the registry); it spells none itself."""
    paths = [p for p in _edge_paths() if not any(_matches(_module_name(p), e) for e in OPTION_EDGES_EXEMPT)]
    assert any(_module_name(p) == "services.gateway.oip.tensors" for p in paths)
    assert any(_module_name(p) == "fleet.cli.commands" for p in paths)
    named = [n for p in paths for n in option_namings(p)]
    assert not named, "edges that state a task's option (declare it on the task: cli_parameters, " \
                      "oip_request_parameters):\n" + "\n".join(named)


def test_the_option_check_sees_options(tmp_path: Path) -> None:
    fake = tmp_path / "probe.py"
    fake.write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--iou', type=float)\n"
                    "NAMES = ('confidence', 'class_agnostic_nms', 'visualize')\nHELP = 'the --iou flag'\n",
                    encoding="utf-8")
    found = option_namings(fake, "fleet.cli.probe")
    assert [f.split(" ", 1)[1] for f in found] == ["says '--iou'", "says 'class_agnostic_nms'"], found
