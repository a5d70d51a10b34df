"""Import contracts of hwnas: the floors of the house, checked with the standard library.

Why a checker of our own (about 150 lines of ``ast``) rather than import-linter: no new
dependency in every install, the rules read as the tables below, every import counts —
also the function-level imports where most cross-layer imports hide, and those under
``TYPE_CHECKING`` — and each violation is one line naming file, line and the rule.

Contracts (``python tools/import_contracts.py [ROOT]``; exit 1 on any violation; run by
``make lint`` and by tests/test_import_contracts.py):

1. layers — a module imports only modules of its own floor or of a lower one
   (``FLOORS``, top to bottom); every production module sits on exactly one floor;
2. testing — no production module imports ``hwnas.testing`` (it sits above everything), not
   even by name: a string that is a ``hwnas.testing`` module name (the way the registry once
   loaded the fakes) counts as an import;
3. assets at the edge — ``hwnas.assets`` is imported only where user input is read
   (``ASSET_READERS``): lower layers receive a path or an opened object;
4. no sideways doors — profilers, cost models and search all stand on ``nn`` and the
   records; the one door between them is search -> cost_models (a CostSource): search never
   imports profilers, cost models never import profilers or search, profilers neither.

An exception is a row of ``EXCEPTIONS`` with the reason it is right; there are none now.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

#: Floors, top to bottom. A name is a module or a package (with its submodules); the
#: longest name that matches a module decides its floor; ``hwnas`` is the root module only.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("testing", ("hwnas.testing",)),
    ("edge", ("hwnas.cli", "hwnas.demo", "hwnas.dashboard", "hwnas.assets.build", "hwnas.assets.recipes", "hwnas.assets.cpu_table",
              "hwnas.assets.kernel_asset")),
    ("search", ("hwnas.search",)),
    ("cost_models", ("hwnas.cost_models",)),
    ("profilers", ("hwnas.profilers",)),
    ("nn", ("hwnas.nn", "hwnas.zoo")),
    ("records", ("hwnas.store", "hwnas.primitives", "hwnas.config", "hwnas.options", "hwnas.run_section", "hwnas.assets")),
    ("core", ("hwnas", "hwnas.registry", "hwnas.inputs", "hwnas.yamlio", "hwnas.ui", "hwnas.raycluster")),
    ("errors", ("hwnas.errors",)),
)

#: The only modules that may import ``hwnas.assets`` (they read user input).
ASSET_READERS: tuple[str, ...] = (
    "hwnas.assets", "hwnas.cli", "hwnas.demo", "hwnas.config", "hwnas.options", "hwnas.cost_models.source", "hwnas.testing",
)

#: (importer, imported): imports refused even where the floors would allow them.
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("hwnas.search", "hwnas.profilers", "search reaches hardware only through a CostSource (hwnas.cost_models)"),
    ("hwnas.profilers", "hwnas.cost_models", "profilers sit below cost models"),
    ("hwnas.profilers", "hwnas.search", "profilers never import the search engine"),
    ("hwnas.cost_models", "hwnas.search", "cost models never import the search engine"),
    ("hwnas.cost_models", "hwnas.profilers", "cost models read measurements from the store, never the profilers"),
    ("hwnas.nn", "hwnas.store", "the network layer is neutral: no store"),
)

#: A string naming a module of hwnas.testing (``importlib.import_module`` / entry-point style).
TESTING_NAME = re.compile(r"^hwnas\.testing(\.[a-z_]+)*(:[A-Za-z_]+)?$")

#: (importer, imported) -> why this one upward or forbidden import is right.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    importer: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.rule}"


def _within(module: str, name: str) -> bool:
    if name == "hwnas":
        return module == "hwnas"
    return module == name or module.startswith(name + ".")


def floor_of(module: str) -> int | None:
    """Index of ``module``'s floor in :data:`FLOORS` (0 = top), or None when it has none."""
    best: tuple[int, int] | None = None
    for i, (_, names) in enumerate(FLOORS):
        for name in names:
            if _within(module, name) and (best is None or len(name) > best[1]):
                best = (i, len(name))
    return None if best is None else best[0]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> list[tuple[int, str]]:
    """Every ``hwnas`` module ``path`` imports, at any depth, with its line.

    ``from hwnas import registry`` counts as ``hwnas.registry`` when that is a module;
    relative imports are made absolute."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            for a in node.names:
                sub = root.joinpath(*f"{base}.{a.name}".split("."))
                is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                out.append((node.lineno, f"{base}.{a.name}" if is_module else base))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and TESTING_NAME.match(node.value):
            out.append((node.lineno, node.value.partition(":")[0]))  # a module named for importlib / entry points
    ours = [(line, name) for line, name in out if _within(name, "hwnas") or name.startswith("hwnas.")]
    return sorted(set(ours))


def _check_one(path: Path, line: int, importer: str, imported: str) -> list[Violation]:
    if (importer, imported) in EXCEPTIONS or _within(imported, importer) or _within(importer, imported):
        return []
    found: list[Violation] = []
    mine, theirs = floor_of(importer), floor_of(imported)
    to_testing = _within(imported, "hwnas.testing")
    if theirs is not None and mine is not None and theirs < mine and not to_testing:
        found.append(Violation(path, line, importer, imported,
                               f"upward: floor {FLOORS[mine][0]!r} may not import floor {FLOORS[theirs][0]!r}"))
    if to_testing and not _within(importer, "hwnas.testing"):
        found.append(Violation(path, line, importer, imported, "production never imports hwnas.testing"))
    if _within(imported, "hwnas.assets") and not any(_within(importer, r) for r in ASSET_READERS):
        found.append(Violation(path, line, importer, imported,
                               "asset:NAME is resolved at the edge (hwnas.assets.resolve_path); pass a path down"))
    for src, dst, why in FORBIDDEN:
        if _within(importer, src) and _within(imported, dst):
            found.append(Violation(path, line, importer, imported, f"forbidden: {why}"))
    return found


def check(root: Path) -> list[Violation]:
    """All violations of the contracts in the ``hwnas`` package under ``root``."""
    found: list[Violation] = []
    for path in sorted((root / "hwnas").rglob("*.py")):
        importer = module_name(root, path)
        if floor_of(importer) is None:
            found.append(Violation(path.relative_to(root), 1, importer, "-", "module on no floor: add it to FLOORS"))
            continue
        for line, imported in imports(root, path):
            found += _check_one(path.relative_to(root), line, importer, imported)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).resolve().parent.parent)
    found = check(root)
    for v in found:
        print(v)
    print(f"import contracts: {len(found)} violation(s)" if found else "import contracts: kept", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
