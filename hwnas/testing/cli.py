"""``python -m hwnas.testing.cli ARGS``: the ``hwnas`` command with the test fakes registered.

Why a command of its own: the toy space and the fake backend are for tests and dry runs,
so a user's ``hwnas`` never lists them; tests that run the command in a subprocess (leases
shared by two processes, plugins) use this one instead, as does a plugin author who
wants a dry run of the toolflow (``python -m hwnas.testing.cli profile --space toy
--backend fake --store s.sqlite``).
"""
from __future__ import annotations

import sys
from typing import Sequence

from hwnas.cli import main as hwnas_main
from hwnas.testing import register_fakes


def main(argv: Sequence[str] | None = None) -> int:
    register_fakes()
    return hwnas_main(argv)


if __name__ == "__main__":
    sys.exit(main())
