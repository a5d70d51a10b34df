"""A user error in one rank of a spawned run comes back as its one line, at once: the
other ranks, waiting in a collective for the failed one, are stopped (they used to wait
for the collective's timeout)."""
from __future__ import annotations

import pytest

from hwnas.errors import HwnasError


@pytest.mark.slow
@pytest.mark.timeout(240)  # far below the 10-minute collective timeout the other rank would wait
def test_a_user_error_in_one_rank_stops_the_others() -> None:
    from hwnas.search.distributed import spawn
    from hwnas.search.runtime import ExecOptions
    from hwnas.testing.ddp import fail_on_rank

    with pytest.raises(HwnasError, match=r"^rank 1: a bad input$"):
        spawn(fail_on_rank, 2, ExecOptions(device="cpu"), 1)
