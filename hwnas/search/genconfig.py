"""``hwnas gen-config``: a complete, commented default config for chosen components.

Built from the components' ``Options`` fields (default and help text), so it can never
drift from what the loader accepts. The search space's input shape and class count are
aligned with the chosen dataset, so the generated file runs as written for the
self-contained datasets (digits, synthetic).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hwnas import registry
from hwnas.config import SECTIONS
from hwnas.inputs import output_file

#: What ``gen-config`` writes for sections the user does not choose: a config that runs
#: as written on the self-contained digits dataset.
DEFAULT_CHOICES: dict[str, str] = {"dataset": "digits", "search_space": "mbv2", "controller": "evolution",
                                   "weights_manager": "plain", "evaluator": "tune", "objective": "classification",
                                   "trainer": "simple"}

#: Options written for a hardware objective (it has no default source): a whole-network
#: table the user points at their own data, e.g. the NAS-Bench-201 latency table.
HARDWARE_EXAMPLE: dict[str, Any] = {"table": "latency.csv", "column": "latency_ms"}

#: Placeholders for sections that need the user's own data (no default exists): the
#: generated config names the file to supply, and loading it says which one is missing.
DATA_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("evaluator", "table"): {"table": "nb201_cifar10_accuracy.csv"},
    ("objective", "diff_hardware"): {"model": "models/lut"},
}

#: Example children for a composite objective (its default list is empty).
COMPOSITE_EXAMPLE: list[dict[str, Any]] = [
    {"type": "classification", "weight": 1.0},
    {"type": "hardware", "metric": "latency", "mode": "constraint", "budget": 5.0,
     "table": "latency.csv", "column": "ms"},
]


def _scalar(v: Any) -> str:
    import yaml

    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, tuple):
        v = list(v)
    if dataclasses.is_dataclass(v):  # a nested options section, e.g. dataset.augment
        from hwnas.config import options_to_dict

        v = options_to_dict(v)
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def section_yaml(section: str, type_name: str, overrides: dict[str, Any] | None = None) -> list[str]:
    """Lines of one section: type, then each option with its help as a comment."""
    role = SECTIONS[section]
    cls = registry.get(role, type_name)
    summary = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
    lines = [f"{section}:", f"  type: {type_name}" + (f"  # {summary}" if summary else "")]
    opts = getattr(cls, "Options", None)
    if opts is None or not dataclasses.is_dataclass(opts):
        return lines
    for f in dataclasses.fields(opts):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            value = f.default_factory()  # type: ignore[misc]
        else:
            value = None
        if overrides and f.name in overrides:
            value = overrides[f.name]
        elif section == "objective" and type_name == "hardware" and f.name in HARDWARE_EXAMPLE:
            value = HARDWARE_EXAMPLE[f.name]
        elif f.name in DATA_EXAMPLES.get((section, type_name), {}):
            value = DATA_EXAMPLES[(section, type_name)][f.name]
        meta = f.metadata
        limits = ", ".join(f"{k} {meta[k]}" for k in ("min", "gt", "max", "lt") if k in meta)
        help_ = meta.get("help", "")
        if help_ or limits:
            lines.append(f"  # {help_}" + (f" ({limits})" if limits else ""))
        if section == "objective" and type_name == "composite" and f.name == "objectives" and not value:
            lines.append("  objectives:")
            for child in COMPOSITE_EXAMPLE:
                items = list(child.items())
                lines.append(f"    - {items[0][0]}: {_scalar(items[0][1])}")
                lines += [f"      {k}: {_scalar(v)}" for k, v in items[1:]]
            continue
        lines.append(f"  {f.name}: {_scalar(value)}")
    return lines


def gen_config(choices: dict[str, str], seed: int = 0) -> str:
    """The YAML text for ``{section: type}`` choices (missing sections are left out)."""
    space_over: dict[str, Any] = {}
    ds = choices.get("dataset")
    if ds:
        dcls = registry.get("dataset", ds)
        dopts = getattr(dcls, "Options", None)
        fields = {f.name: f for f in dataclasses.fields(dopts)} if dopts else {}
        res = fields["resolution"].default if "resolution" in fields else None
        ch = fields["channels"].default if "channels" in fields else None
        ncls = fields["num_classes"].default if "num_classes" in fields else dcls.known_classes
        space_over = {k: v for k, v in (("resolution", res), ("in_channels", ch), ("num_classes", ncls))
                      if v is not None}
    out = ["# hwnas run config (generated by `hwnas gen-config`; every option shown at its default)",
           "# relative paths resolve against this file's folder", f"seed: {seed}", ""]
    for section in SECTIONS:
        t = choices.get(section)
        if not t:
            continue
        over = None
        if section == "search_space":
            sp_opts = getattr(registry.get("search_space", t), "Options", None)
            names = {f.name for f in dataclasses.fields(sp_opts)} if sp_opts else set()
            over = {k: v for k, v in space_over.items() if k in names}
        out += section_yaml(section, t, over)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def resolve_choices(chosen: dict[str, str | None]) -> dict[str, str]:
    """The user's choices completed so the result loads and builds: a supernet brings the
    space it serves, a shared-weights evaluator brings the space's supernet, and every
    section left unset takes :data:`DEFAULT_CHOICES`."""
    from hwnas.search.final import default_supernet

    out = {k: v for k, v in chosen.items() if v}
    wm = out.get("weights_manager")
    serves = getattr(registry.get("weights_manager", wm), "supernet_for", ()) if wm else ()
    if serves and "search_space" not in out:
        out["search_space"] = serves[0]
    space = out.get("search_space", DEFAULT_CHOICES["search_space"])
    needs_shared = out.get("evaluator") and getattr(registry.get("evaluator", out["evaluator"]),
                                                    "needs_shared_weights", False)
    if needs_shared and "weights_manager" not in out:
        sup = default_supernet(space)
        if sup is not None:
            out["weights_manager"] = sup
    ctrl = out.get("controller")
    if ctrl and getattr(registry.get("controller", ctrl), "needs_gradients", False):
        # a differentiable controller: a manager that passes gradients, a trainer without evaluator
        out.setdefault("weights_manager", next(e.name for e in registry.list("weights_manager")
                                               if getattr(e.obj, "gives_gradients", False)))
        out.setdefault("trainer", next(e.name for e in registry.list("trainer")
                                       if not getattr(e.obj, "needs_evaluator", True)))
    if out.get("evaluator") == "table" and "search_space" not in out:
        out["search_space"] = "nb201"  # the table the placeholder names is NAS-Bench-201's
    full = {**DEFAULT_CHOICES, **out}
    # the search's own rule (WeightsManager.serves), asked before a config is written
    registry.get("weights_manager", full["weights_manager"]).check_space(
        registry.get("search_space", full["search_space"]), where="--weights-manager")
    return full


def write_config(choices: dict[str, str | None], seed: int = 0, out: str | Path | None = None) -> str:
    """:func:`gen_config` for the chosen sections completed by :func:`resolve_choices`;
    written to ``out`` if given."""
    target = output_file(out, "config file") if out is not None else None
    text = gen_config(resolve_choices(choices), seed=seed)
    if target is not None:
        target.write_text(text)
    return text
