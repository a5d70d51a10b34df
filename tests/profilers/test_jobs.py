"""The typed job parts: the request (validated, one line per bad option), the worker's
messages (a reply is samples or an error), the lease skeleton every job runs on, and the
kernel job on it (resume, deadline, no item measured twice)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hwnas.errors import ConfigError
from hwnas.profilers.jobs import JobItem, LeasedItems, LostLease
from hwnas.profilers.kernel_job import KERNEL_PROTOCOL, KernelJob, KernelSampling, kernel_protocol
from hwnas.profilers.messages import WorkerConfig, WorkerReply, worker_config
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Measurement, Store, settings_hash
from hwnas.store.claims import CLAIMED, Claims, ItemKey, Owner, item_stored


@pytest.mark.parametrize("kw, where", [
    ({"networks": -1}, "networks"), ({"device": "tpu"}, "device"), ({"backends": ()}, "backend"),
    ({"gpu_index": -2}, "gpu-index"), ({"deadline_s": float("nan")}, "deadline"), ({"seed": 1.5}, "seed"),
    ({"ray_address": "10.0.0.5:6379"}, "--ray-address"), ({"protocol": {"warmup": 1}}, "protocol")])
def test_a_bad_request_is_one_line_naming_the_option(kw: dict, where: str) -> None:
    with pytest.raises(ConfigError) as e:
        ProfileRequest(**kw)
    assert str(e.value).startswith(where) and "\n" not in str(e.value)


def test_request_defaults_are_the_jobs_own() -> None:
    r = ProfileRequest(backends=["fake", "tvm"], imports=["m"], tune_trials=2, device="gpu", gpu_index=1)
    assert r.backends == ("fake", "tvm") and r.imports == ("m",) and r.timeout(120.0) == 120.0
    assert r.timing(KERNEL_PROTOCOL) is KERNEL_PROTOCOL and ProfileRequest(timeout_s=7).timeout(120.0) == 7
    assert r.backend_options("/x/s.sqlite")["tvm"] == {"tune_trials": 2, "tuning_dir": "/x/s.tvm-tuning",
                                                       "gpu_index": 1}
    # the kernel job times with its own protocol unless timing options were changed
    assert kernel_protocol(TimingProtocol(threads=2)) == TimingProtocol.from_dict({**KERNEL_PROTOCOL.to_dict(),
                                                                                  "threads": 2})
    assert kernel_protocol(TimingProtocol(sessions=2)).sessions == 2


def test_worker_messages_round_trip_and_a_reply_is_samples_or_error() -> None:
    class B:
        name, options = "onnxruntime", {"gpu_index": 1}
    cfg = worker_config(B(), "gpu", TimingProtocol(threads=3), imports=("m",), energy=False)
    assert WorkerConfig.from_dict(cfg.to_dict()) == cfg and cfg.threads == 3
    ok = WorkerReply.from_dict({"ok": True, "result": {"samples_ms": [1, 2.5]}})
    assert ok.ok and ok.samples_ms == (1.0, 2.5) and WorkerReply.from_dict(ok.to_dict()) == ok
    bad = WorkerReply.from_dict({"ok": True})  # a result line without a result is a failure, not samples
    assert not bad.ok and bad.error == "unknown error" and bad.samples_ms == ()
    with pytest.raises(ValueError):
        WorkerReply({"samples_ms": [1.0]}, "and an error")


SETTINGS = {"s": 1}


def _items(dev: int, n: int) -> list[JobItem]:
    return [JobItem(ItemKey(dev, "fake", settings_hash(SETTINGS), "primitive", f"p{i}"), i, 60.0) for i in range(n)]


def _row(it: JobItem) -> list[Measurement]:
    return [Measurement("primitive", it.key.target, "fake", SETTINGS, (1.0,))]


def test_leases_skip_done_items_wait_for_held_ones_and_stop_at_the_deadline(store_path: Path, cpu_device) -> None:
    with Store(store_path) as st:
        dev = st.add_device(cpu_device)
        items = _items(dev, 4)
        other = Claims(st, Owner("other-job", Owner.me().host, Owner.me().pid, Owner.me().started))
        assert other.claim(items[1].key, 60, lambda: False) == CLAIMED
        st.add_measurements(dev, _row(items[0]))  # done before the job starts
        paused = []

        def pause() -> None:  # the other job finishes its item while this one waits
            paused.append(1)
            other.commit(items[1].key, _row(items[1]))

        done = lambda k: item_stored(st, k)  # noqa: E731
        with LeasedItems(st, items, done, pause=pause) as leases:
            measured = []
            leases.run(lambda it: (measured.append(it.obj), _row(it))[1])
        assert measured == [2, 3] and leases.elsewhere == 2 and paused == [1] and leases.left == 0
        assert Counter(r["target"] for r in st.query()) == {f"p{i}": 1 for i in range(4)}
        late = LeasedItems(st, _items(dev, 6)[4:], done, deadline=0.0)
        assert late.take() is None and late.left == 2 and late.stopped


def test_a_lost_lease_stores_nothing(store_path: Path, cpu_device) -> None:
    with Store(store_path) as st:
        dev = st.add_device(cpu_device)
        it = _items(dev, 1)[0]
        leases = LeasedItems(st, [it], lambda k: item_stored(st, k))
        assert leases.take() is it
        st.conn.execute("UPDATE claims SET owner='thief'")  # taken over while we stalled
        with pytest.raises(LostLease):
            leases.renew(it, 10)
        assert leases.commit(it, _row(it)) is None and leases.elsewhere == 1 and not st.query()


@pytest.mark.timeout(300)
def test_kernel_job_resumes_and_stops_at_its_deadline(store_path: Path, measured_rules) -> None:
    from hwnas.nn.kernels.rules import KIND
    from hwnas.profilers.fingerprint import device_fingerprint

    proto = TimingProtocol(warmup=1, min_repeats=3, max_repeats=3, min_time_ms=0.5, time_budget_s=0.3, sessions=1)
    request = ProfileRequest(networks=3, seed=5, protocol=proto, show_progress=False)
    sampling = KernelSampling(rounds=1, max_macs=2e7, max_resolution=32)
    with Store(store_path) as st:
        dev_id = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev_id, "onnxruntime", KIND, measured_rules.to_dict(), {"test": True})
        stopped = KernelJob(st, ProfileRequest(networks=3, protocol=proto, deadline_s=0), sampling).run()
        assert not stopped.complete and stopped.measured == 0 and not st.query()
        first = KernelJob(st, request, sampling).run()
        assert first.complete and first.measured + first.failed == 3 and first.kernels > 0
        n_rows = len(st.query())
        again = KernelJob(st, request, sampling).run()
        assert again.complete and again.skipped == first.measured and again.measured == 0
        assert len(st.query()) == n_rows + again.failed  # failed networks are measured again, as before
        nets = Counter(r["target"] for r in st.query(kind="network", ok_only=True))
        assert set(nets.values()) == {1} and st.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
