"""The device farm: profiling tasks on Ray nodes holding a custom resource, results
streamed to the driver (the store's only writer); the same rows as a local job; a
resource no node has and an address that does not answer are one-line errors."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.profilers import api
from hwnas.profilers.request import ProfileRequest
from hwnas.store import Store

TOY = {"n": 3, "k": 2}


@pytest.mark.slow
def test_farm_job_measures_on_resource_nodes_and_resumes(ray_local: Any, tmp_path: Path, fast_protocol) -> None:
    store = tmp_path / "farm.sqlite"
    farm = ProfileRequest(backends=("fake",), protocol=fast_protocol, networks=2, device_resource="fakedev")
    s1 = api.profile_space("toy", TOY, store, farm)
    b = s1.backends[0]
    assert b.measured["primitive"] > 0 and b.measured["network"] == 2 and b.failed["primitive"] == 0
    local = api.profile_space("toy", TOY, tmp_path / "local.sqlite", replace(farm, device_resource=None))
    assert local.backends[0].measured == b.measured  # the same items, the same runner code
    with Store(store) as st:
        rows = st.query()
        assert len(rows) == sum(b.measured.values())
        assert all(r["error"] is None and r["median_ms"] > 0 for r in rows)
        assert st.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # every lease given back
    s2 = api.profile_space("toy", TOY, store, farm)
    assert s2.backends[0].measured == {"primitive": 0, "network": 0, "block": 0}  # resumed: all skipped


@pytest.mark.timeout(120)  # an address nobody answers fails at once, not after the test's timeout
def test_farm_bad_resource_and_address_are_one_line(ray_local: Any, tmp_path: Path, fast_protocol,
                                                    capsys: Any) -> None:
    store = tmp_path / "s.sqlite"
    api.profile_space("toy", TOY, store, ProfileRequest(backends=("fake",), protocol=fast_protocol))
    with Store(store) as st:
        before = len(st.query())
    with pytest.raises(ConfigError, match="--device-resource jetson: no node of the local Ray instance advertises "
                                          "it .*fakedev"):
        api.profile_space("toy", TOY, store, ProfileRequest(backends=("fake",), device_resource="jetson"))
    rc = main(["profile", "--space", "toy", "--space-opt", "n=3", "--space-opt", "k=2", "--backend", "fake",
               "--store", str(store), "--ray-address", "127.0.0.1:9", "--device-resource", "fakedev"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--ray-address 127.0.0.1:9: no Ray cluster answers" in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="--device-resource"):
        api.profile_space("toy", TOY, store, ProfileRequest(backends=("fake",), ray_address="127.0.0.1:9"))
    with Store(store) as st:
        assert len(st.query()) == before  # nothing measured is lost
