"""Shared by the ingest and power suites: a rejected file must fail as a user error.

``hwnas ingest`` promises that a malformed file stores nothing and says which file is
wrong; parsers therefore raise a :class:`~hwnas.errors.HwnasError` (exit code 2) whose
one-line message names the file, never an arbitrary exception from deep inside.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hwnas.errors import HwnasError
from hwnas.testing._common import ContractError

#: Files no format accepts: empty, and text of the wrong shape.
BAD_FILES: dict[str, str] = {"empty.txt": "", "garbage.txt": "this is not a log\nneither is this: 1 2 3\n"}


def check_rejects(role: str, name: str, parse: Callable[[Path], Any], tmp_dir: Path) -> None:
    """Every file of :data:`BAD_FILES` raises a HwnasError that names it."""
    folder = tmp_dir / f"bad-{role}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    for fname, text in BAD_FILES.items():
        path = folder / fname
        path.write_text(text)
        try:
            parse(path)
        except HwnasError as exc:
            if fname not in str(exc):
                raise ContractError(f"{role} {name!r}: the error for a bad file must name it, got {exc}") from None
            continue
        except Exception as exc:
            raise ContractError(f"{role} {name!r}: a bad file ({fname}) must raise a HwnasError (IngestError), "
                                f"got {type(exc).__name__}: {exc}") from exc
        raise ContractError(f"{role} {name!r}: accepted a bad file ({fname}: {text[:30]!r})")
