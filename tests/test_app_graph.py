"""scripts/app_graph.py: the apps depend one way, down the declared layering."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "app_graph.py"


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app_graph"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_it_finds_no_cycle_and_no_upward_import_in_the_project() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), str(ROOT)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "acyclic, nothing imports upward" in run.stdout
    assert " gateway -> catalogue " in run.stdout  # the edges are printed, with their counts


def test_it_reports_an_upward_edge_with_the_imports_that_make_it() -> None:
    graph = _checker()
    found = graph.Graph()
    found.add("gateway", "catalogue", "gateway/a.py:3")
    found.add("catalogue", "gateway", "catalogue/b.py:7")
    problems = graph.problems(found, (("catalogue",), ("gateway",)))
    assert problems == [
        "cycle: catalogue -> gateway -> catalogue",
        "apps that reach each other: catalogue, gateway",
        "upward edge: catalogue -> gateway (catalogue/b.py:7)",
    ]


def test_it_reports_an_upward_edge_that_makes_no_cycle() -> None:
    graph = _checker()
    found = graph.Graph()
    found.add("core", "accounts", "core/x.py:1")
    assert graph.problems(found, (("core",), ("catalogue",), ("accounts",))) == [
        "upward edge: core -> accounts (core/x.py:1)"
    ]


def test_it_names_a_cycle_through_three_apps() -> None:
    graph = _checker()
    assert graph.find_cycle([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == ["a", "b", "c", "a"]
    assert graph.find_cycle([("a", "b"), ("b", "c"), ("a", "c")]) is None
    assert graph.tangles([("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("a", "c")]) == [
        ["a", "b"],
        ["c", "d", "e"],
    ]


def test_it_reads_imports_inside_functions_and_dynamic_ones_but_not_migrations(tmp_path: Path) -> None:
    graph = _checker()
    root = _tree(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/views.py": "def view():\n    from high.models import Thing\n    return Thing\n",
            "low/hooks.py": "from django.utils.module_loading import import_string\nX = import_string('high.x.Y')\n",
            "low/migrations/0001_initial.py": "import high.models\n",
            "high/__init__.py": "",
            "high/models.py": "from low import views\n",
        },
    )
    found = graph.build(root, (("low",), ("high",)))
    assert dict(found.counts) == {("low", "high"): 2, ("high", "low"): 1}
    assert found.places[("low", "high")] == ["low/hooks.py:2", "low/views.py:2"]
    run = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False)
    assert "not in the layering: high (add it to LAYERS)" in run.stderr.splitlines()


def test_it_exits_non_zero_naming_the_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "catalogue/__init__.py": "",
            "catalogue/a.py": "import gateway\n",
            "gateway/__init__.py": "from catalogue import a\n",
        },
    )
    run = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "cycle: catalogue -> gateway -> catalogue" in run.stderr
    assert "upward edge: catalogue -> gateway (catalogue/a.py:1)" in run.stderr


def test_it_fails_on_an_app_missing_from_the_layering(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"widgets/__init__.py": "", "tests/__init__.py": "", "core/__init__.py": ""})
    run = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["not in the layering: widgets (add it to LAYERS)"]
