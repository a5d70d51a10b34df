"""From the names found in logs (layers, subgraphs, bundle item names) to hwnas targets.

Tools name what they time after the compiled graph (``net_conv_3``,
``subgraph_conv1``), not after hwnas primitives, so a latency log becomes a cost table
only through a mapping. Two sources are accepted:

* a bundle manifest (``hwnas profile --export-only``): item ``name`` -> primitive or
  network (see docs/offline-results.md);
* a user mapping file (YAML): ``name: "<primitive key>"`` or ``name: {op: ..., c_in: ...}``.

Names that tools shortened are matched too: DNNDK truncates and may end the name in
``*`` (matched as a unique prefix), vaitrace keeps ``...`` plus the last 60 characters
(matched as a unique suffix). Primitive keys are also accepted directly as names, so a
results file may skip the manifest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError, IngestError
from hwnas.inputs import read_json
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.yamlio import read_yaml

#: Op of a layer that no mapping names: stored as its own opaque primitive.
LAYER_OP = "dpu_layer"

Target = tuple[str, Any]  # ("primitive", Primitive) | ("network", NetworkSpec)


def _scalar(tok: str) -> Any:
    for conv in (int, float):
        try:
            return conv(tok)
        except ValueError:
            pass
    return tok


def parse_key(key: str) -> Primitive:
    """Rebuild a Primitive from its canonical key (``mbconv c24>32 56x56 k5 s2 e6 relu6``).

    The result must print back to the same key, so a typo never maps silently to a
    different primitive.
    """
    toks = key.split()
    try:
        op, chan, hw = toks[0], toks[1], toks[2]
        c_in, c_out = (int(x) for x in chan[1:].split(">")) if chan.startswith("c") else (None, None)
        h, w = (int(x) for x in hw.split("x"))
        kw: dict[str, Any] = {}
        extras: list[tuple[str, Any]] = []
        for t in toks[3:]:
            if "=" in t:
                k, v = t.split("=", 1)
                extras.append((k, _scalar(v)))
            elif t == "se":
                kw["se"] = True
            elif t[0] in "ksg" and t[1:].isdigit():
                kw[{"k": "kernel", "s": "stride", "g": "groups"}[t[0]]] = int(t[1:])
            elif t[0] == "e" and t[1:2].isdigit():
                kw["expansion"] = _scalar(t[1:])
            else:
                kw["act"] = t
        prim = Primitive(op, c_in, c_out, h, w, extras=tuple(extras), **kw)  # type: ignore[arg-type]
    except (IndexError, ValueError, TypeError, HwnasError) as exc:
        raise IngestError(f"not a primitive key: {key!r} ({exc})") from None
    if prim.key != key:
        raise IngestError(f"not a canonical primitive key: {key!r} (reads back as {prim.key!r})")
    return prim


def looks_like_key(name: str) -> bool:
    toks = name.split()
    return len(toks) >= 3 and toks[1].startswith("c") and ">" in toks[1] and "x" in toks[2]


def layer_primitive(name: str) -> Primitive:
    """An unmapped layer as an opaque primitive: real name in extras, shapes unknown (1).

    Why keep them at all: a DPU table is often wanted as-is (per-layer latency of one
    deployed network) and the names are stable identities on that device. The shapes
    are placeholders, so shape-based featurizers must not use ``dpu_layer`` rows; the op
    name makes them easy to filter.
    """
    return Primitive(LAYER_OP, 1, 1, 1, 1, extras=(("layer", name.replace(" ", "_")),))


class Resolver:
    """Name -> target lookup over a manifest and/or a mapping file."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}
        #: The bundle's timing protocol, used for results files that state none.
        self.settings: dict[str, Any] = {}

    @classmethod
    def from_files(cls, manifest: str | Path | None = None, mapping: str | Path | None = None) -> "Resolver":
        r = cls()
        if manifest:
            r.load_manifest(Path(manifest))
        if mapping:
            r.load_mapping(Path(mapping))
        return r

    def load_manifest(self, path: Path) -> None:
        try:
            data = read_json(path, "bundle manifest")
        except HwnasError as exc:
            raise IngestError(str(exc)) from None
        if not isinstance(data, dict) or data.get("format") != "hwnas-bundle" or not isinstance(data.get("items"), list):
            raise IngestError(f"{path.name}: expected {{'format': 'hwnas-bundle', 'items': [...]}}")
        if isinstance(data.get("settings"), dict):
            self.settings = dict(data["settings"])
        for i, item in enumerate(data["items"]):
            where = f"{path.name}: items[{i}]"
            if not isinstance(item, dict) or "name" not in item:
                raise IngestError(f"{where}: expected an object with a 'name'")
            try:
                if item.get("kind") == "network":
                    net = NetworkSpec.from_dict(item["network"])
                    if item.get("hash") and item["hash"] != net.hash:
                        raise IngestError(f"{where}: hash {item['hash']} does not match the network ({net.hash})")
                    self.targets[str(item["name"])] = ("network", net)
                else:
                    prim = Primitive.from_dict(item["primitive"]) if "primitive" in item else parse_key(item["key"])
                    if item.get("key") and item["key"] != prim.key:
                        raise IngestError(f"{where}: key {item['key']!r} does not match the primitive ({prim.key!r})")
                    self.targets[str(item["name"])] = ("primitive", prim)
            except KeyError as exc:
                raise IngestError(f"{where}: expected field {exc.args[0]!r}") from None
            except IngestError:
                raise
            except HwnasError as exc:
                raise IngestError(f"{where}: {exc}") from None

    def load_mapping(self, path: Path) -> None:
        try:
            data = read_yaml(path, "mapping file")
        except HwnasError as exc:
            raise IngestError(str(exc)) from None
        if not isinstance(data, dict) or not data:
            raise IngestError(f"{path.name}: expected a YAML mapping 'layer name: primitive key or dict'")
        for name, value in data.items():
            if not isinstance(name, (str, int)) or isinstance(name, bool):
                raise IngestError(f"{path.name}: layer names are strings, got {type(name).__name__} {str(name)[:40]}")
            if not isinstance(value, (str, dict)):
                raise IngestError(f"{path.name}: {name}: expected a primitive key (string) or a primitive mapping "
                                  f"(op, c_in, c_out, h, w, ...), got {type(value).__name__}")
            try:
                prim = parse_key(value) if isinstance(value, str) else Primitive.from_dict(value)
            except HwnasError as exc:
                raise IngestError(f"{path.name}: {name}: {exc}") from None
            self.targets[str(name)] = ("primitive", prim)

    def resolve(self, name: str) -> Target | None:
        """Exact name, then a truncated name (``abc*`` prefix, ``...xyz`` suffix), then a key."""
        hit = self.targets.get(name)
        if hit:
            return hit
        cands: list[str] = []
        if name.endswith("*") and len(name) > 1:
            cands = [n for n in self.targets if n.startswith(name[:-1])]
        elif name.startswith("...") and len(name) > 3:
            cands = [n for n in self.targets if n.endswith(name[3:])]
        if len(cands) == 1:
            return self.targets[cands[0]]
        if looks_like_key(name):
            try:
                return ("primitive", parse_key(name))
            except IngestError:
                return None
        return None
