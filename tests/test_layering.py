"""The package layering of ../shared/DESIGN.md, checked on the source (imports anywhere in a file).

* ``search_spaces`` imports nothing of ours; ``hardware``, ``supernets`` and ``predictors``
  import only ``search_spaces``; ``nas`` imports them all.
* No package (nor ``bench/``) imports another package's private module or name; tests
  may import the private parts of the package they test (``tests/<package>/``).
* Nothing but the CLI itself imports ``nas.cli`` (tests drive the CLI through ``nas.cli.main``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("search_spaces", "hardware", "supernets", "predictors", "nas")
ALLOWED = {
    "search_spaces": {"search_spaces"},
    "hardware": {"hardware", "search_spaces"},
    "supernets": {"supernets", "search_spaces"},
    "predictors": {"predictors", "search_spaces"},
    "nas": set(OURS),
    "bench": set(OURS),
}
TEST_OWNER = {"search_spaces": "search_spaces", "hardware": "hardware", "supernets": "supernets",
              "predictors": "predictors", "nas": "nas", "run": "nas"}


def _files() -> list[tuple[Path, str, bool]]:
    """(file, owning package, is_test) for every Python file that is checked."""
    out = []
    for package in (*OURS, "bench"):
        out += [(f, package, False) for f in sorted((ROOT / package).rglob("*.py"))]
    for f in sorted((ROOT / "tests").rglob("*.py")):
        parts = f.relative_to(ROOT / "tests").parts
        out.append((f, TEST_OWNER.get(parts[0], "") if len(parts) > 1 else "", True))
    return out


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _violations() -> list[str]:
    problems = []
    for path, owner, is_test in _files():
        where = path.relative_to(ROOT)
        for line, module, names in _imports(path):
            top = module.split(".")[0]
            if top not in OURS:
                continue
            if not is_test and top not in ALLOWED[owner]:
                problems.append(f"{where}:{line}: {owner} must not import {module} (layering)")
            if top != owner and (any(_private(p) for p in module.split(".")) or any(map(_private, names))):
                problems.append(f"{where}:{line}: private import from another package: "
                                f"from {module} import {', '.join(names) or '*'}")
            if (module == "nas.cli" or module.startswith("nas.cli.")) and not is_test \
                    and not str(where).startswith("nas/cli"):
                problems.append(f"{where}:{line}: imports {module} (the CLI is the top floor)")
    return problems


def test_layering_private_imports_and_the_cli_as_top_floor():
    problems = _violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("code, message", [
    ("from search_spaces._plan import plan\n", "private import"),
    ("from hardware import _reference\n", "private import"),
    ("import nas.cli\n", "top floor"),
    ("import nas\n", "layering"),
])
def test_the_checker_catches_each_kind_of_violation(tmp_path, code, message):
    fake = tmp_path / "supernets"
    fake.mkdir()
    (fake / "bad.py").write_text(code)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        for package in (*OURS, "bench", "tests"):
            (tmp_path / package).mkdir(exist_ok=True)
        assert any(message in p for p in _violations())
    finally:
        ROOT = saved
