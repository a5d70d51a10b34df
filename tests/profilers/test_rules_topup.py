"""Rules stored before the plain-layout pairs existed gain them once, measured on this
machine, the next time a job asks for the rules; rules that have them are reused as is."""
from __future__ import annotations

from dataclasses import replace

from hwnas.nn.kernels.rules import KIND
from hwnas.profilers.backends.onnxruntime import OnnxRuntimeBackend
from hwnas.profilers.fingerprint import device_fingerprint
from hwnas.profilers.kernel_job import ensure_rules
from hwnas.store import Store


def _count(st: Store) -> int:
    return int(st.conn.execute("SELECT COUNT(*) FROM rules").fetchone()[0])


def test_old_rules_gain_the_plain_pairs_once(tmp_path, measured_rules) -> None:
    old = replace(measured_rules, pairs={k: v for k, v in measured_rules.pairs.items() if not k.startswith("plain:")})
    assert old.block > 0 and not old.fuses("conv", "add", plain=True)
    be = OnnxRuntimeBackend()
    with Store(tmp_path / "s.sqlite") as st:
        dev = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev, "onnxruntime", KIND, old.to_dict(), {"share": 0.5})
        rules, measured = ensure_rules(st, dev, be)
        assert measured and _count(st) == 2
        plain = {k: v for k, v in rules.pairs.items() if k.startswith("plain:")}
        assert "plain:conv>add" in plain and plain["plain:conv>add"]["c"] == 4 * old.block - 2
        assert plain["plain:conv>add"]["merged"]  # ONNX Runtime made Conv + Add one node
        # the pairs measured before are kept unchanged, and the stored rules are the new ones
        assert all(rules.pairs[k] == v for k, v in old.pairs.items())
        assert st.rules(dev, "onnxruntime", KIND)["settings"]["plain_pairs_added"] is True
        again, measured_again = ensure_rules(st, dev, be)
        assert not measured_again and _count(st) == 2 and again.pairs == rules.pairs


def test_rules_without_a_blocked_layout_are_left_alone(tmp_path, measured_rules) -> None:
    flat = replace(measured_rules, block=0,
                   pairs={k: v for k, v in measured_rules.pairs.items() if not k.startswith("plain:")})
    with Store(tmp_path / "s.sqlite") as st:
        dev = st.add_device(device_fingerprint("cpu", 1))
        st.add_rules(dev, "onnxruntime", KIND, flat.to_dict(), {"share": 0.5})
        rules, measured = ensure_rules(st, dev, OnnxRuntimeBackend())
        assert not measured and _count(st) == 1 and rules.pairs == flat.pairs
