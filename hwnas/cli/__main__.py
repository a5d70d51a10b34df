"""``python -m hwnas.cli``: the same as the ``hwnas`` command."""
from __future__ import annotations

import sys

from hwnas.cli import main

sys.exit(main())
