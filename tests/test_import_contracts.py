"""The import contracts (tools/import_contracts.py) hold on this tree, and each kind of
violation is caught on a small tree written here (so a broken checker cannot pass)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "import_contracts.py"


def _checker():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("import_contracts", SCRIPT)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mod  # type: ignore[union-attr]  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in root.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return root


@pytest.mark.timeout(120)
def test_the_contracts_hold_on_this_tree() -> None:
    res = subprocess.run([sys.executable, str(SCRIPT), str(REPO)], capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "import contracts: kept" in res.stderr


def test_every_kind_of_violation_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "hwnas/errors.py": "",
        "hwnas/primitives.py": "from hwnas.errors import *\n",
        "hwnas/nn/builders.py": "def f():\n    from hwnas.profilers import timing  # lazy, still counted\n",
        "hwnas/profilers/timing.py": "from hwnas.nn import builders\nfrom ..cost_models import fit\n",
        "hwnas/cost_models/fit.py": "from hwnas.primitives import Primitive\nfrom hwnas.profilers import timing\n",
        "hwnas/search/final.py": "from hwnas.profilers.timing import T\nfrom hwnas import assets\n",
        "hwnas/search/ok.py": "from hwnas.cost_models import fit\nfrom hwnas.nn import builders\n",
        "hwnas/store/db.py": "import hwnas.testing.fakes\n",
        "hwnas/registry.py": "MODULES = {'backend': ('hwnas.profilers.x', 'hwnas.testing.fakes')}\n",
        "hwnas/testing/fakes.py": "from hwnas.search import final\n",
        "hwnas/assets/__init__.py": "from hwnas.errors import *\n",
        "hwnas/cli/main.py": "from hwnas import assets, search\n",
        "hwnas/stray.py": "",
    })
    found = {(v.importer, v.imported, v.rule.split(":")[0]) for v in _checker().check(root)}
    assert found == {
        ("hwnas.nn.builders", "hwnas.profilers.timing", "upward"),
        ("hwnas.profilers.timing", "hwnas.cost_models.fit", "upward"),  # relative import made absolute
        ("hwnas.profilers.timing", "hwnas.cost_models.fit", "forbidden"),
        ("hwnas.search.final", "hwnas.profilers.timing", "forbidden"),
        ("hwnas.cost_models.fit", "hwnas.profilers.timing", "forbidden"),
        ("hwnas.search.final", "hwnas.assets", "asset"),
        ("hwnas.store.db", "hwnas.testing.fakes", "production never imports hwnas.testing"),
        ("hwnas.registry", "hwnas.testing.fakes", "production never imports hwnas.testing"),  # by name
        ("hwnas.stray", "-", "module on no floor"),
    }, found


def test_no_module_over_400_lines() -> None:
    """The house rule on module size (DESIGN §2: modules of 100-400 lines)."""
    long = {str(p.relative_to(REPO)): n for p in (REPO / "hwnas").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
