"""Hostile option values: non-finite, negative, huge, empty — refused at the edge in one
line, never accepted silently and never a hang."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import FUZZ, OK_EXPORT, OK_FIT, OK_PROFILE, OK_SEARCH, OK_STORE, WEIRD_NUMBERS, check, fresh, run

NUMERIC = {
    "profile": ["--networks", "--threads", "--batch", "--timeout", "--warmup", "--min-repeats", "--max-repeats",
                "--min-time-ms", "--time-budget", "--sessions", "--seed", "--tune-trials"],
    "fit-cost": ["--test-frac", "--train", "--min-value", "--seed"],
    "search": ["--budget-ms", "--steps"],
    "store show": ["--limit"],
}
values = st.one_of(st.sampled_from(WEIRD_NUMBERS), st.integers(-10**20, 10**20).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12))


@pytest.mark.parametrize("command", sorted(NUMERIC))
def test_numeric_options(seeds: dict[str, Path], fuzz_root: Path, command: str) -> None:
    @FUZZ
    @given(st.sampled_from(NUMERIC[command]), values)
    def inner(flag: str, value: str) -> None:
        d = fresh(fuzz_root, "opt")
        value = value if not value.startswith("-") or value[1:2].isdigit() else " " + value
        base = {
            "profile": ["profile", "--space", "toy", "--space-opt", "n=2", "--space-opt", "k=2", "--backend", "fake",
                        "--store", d / "s.sqlite"],
            "fit-cost": ["fit-cost", "--store", seeds["store"], "--device", "cpu", "--backend", "fake", "--model",
                         "lut"],
            "search": ["search", seeds["config"], "--run-dir", d / "run", "--objective", "latency"],
            "store show": ["store", "show", "--store", seeds["store"]],
        }[command]
        argv = [*base, f"{flag}={value}"]
        res = run(argv, timeout_s=120)
        ok = {"profile": OK_PROFILE, "fit-cost": OK_FIT, "search": OK_SEARCH, "store show": OK_STORE["show"]}[command]
        check(res, argv, [flag, flag.lstrip("-").replace("-", "_"), "networks", "train", "budget", "steps", "store"],
              ok=ok)  # a value inside the option's domain is a valid run

    inner()


@given(st.sampled_from(["depths", "kernels", "expansions", "width", "resolution", "num_classes", "bogus"]),
       st.sampled_from(["[]", "[0]", "nan", "-1", "1e9", "'x'", "[3, nan]", "{a: 1}", "", "[[1]]"]))
@FUZZ
def test_space_options(tmp_path_factory: pytest.TempPathFactory, key: str, value: str) -> None:
    d = tmp_path_factory.mktemp("spaceopt")
    argv = ["profile", "--space", "mbv2", "--space-opt", f"{key}={value}", "--export-only", d / "b", "--networks", "0"]
    res = run(argv, timeout_s=300)
    check(res, argv, [f"mbv2.{key}", "--space-opt"], ok=OK_EXPORT)
