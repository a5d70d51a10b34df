"""``output_dir`` when another process creates the folder between its check and its
mkdir (two DDP ranks starting a run): the folder is there, so that is not an error."""
from __future__ import annotations

from pathlib import Path

import pytest

import hwnas.inputs as inputs
from hwnas.errors import InputError


def test_a_folder_created_meanwhile_by_another_process_is_fine(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run"
    real_mkdir = Path.mkdir

    def racing_mkdir(self: Path, *a, **k):  # type: ignore[no-untyped-def]
        if self == target and not target.exists():
            real_mkdir(self)                  # the other rank wins the race
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    assert inputs.output_dir(target, parents=True) == target and target.is_dir()


def test_a_file_in_the_way_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        inputs.output_dir(tmp_path / "run")
