"""``hwnas detect``: the DetNAS-style detection flow from a YAML config, and the glue
that profiles a detector's primitives (``hwnas profile --detector``).

Why here: the flow (:func:`hwnas.search.detection.stages.run_flow`) and the profiler
(:class:`hwnas.profilers.runner.ProfileJob`) live on different floors - profilers never
import the search engine - so the edge lists the detector's primitives (backbone space +
SSDLite head) and hands that list to the profiler. Parsing and printing otherwise; the
stages, their resumption and the scoring are the library's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from hwnas.cli.common import add_parser, positive
from hwnas.errors import ConfigError
from hwnas.ui import emit, format_table

STAGES = ("supernet", "search", "final")
#: What each stage leaves in the run folder (``--restart`` removes exactly these).
STAGE_FILES = ("supernet.pt", "supernet.json", "search.json", "final.pt", "final.json", "test.json")


def is_detection_config(raw: Any) -> bool:
    """A detection config is told apart by its SSD ``head:`` section."""
    return isinstance(raw, dict) and "head" in raw


def load(config: str) -> tuple[dict[str, Any], Path]:
    """The config's mapping and the folder its relative paths resolve against; a
    classification config is refused in one line naming ``hwnas search``."""
    from hwnas.yamlio import read_yaml

    path = Path(config)
    raw = read_yaml(path)
    if not is_detection_config(raw):
        raise ConfigError(f"{path}: not a detection config (no 'head:' section); run it with: hwnas search {path}")
    return dict(raw), path.resolve().parent


def dataset_root(raw: dict[str, Any], base: Path) -> Path:
    """The dataset folder the config names (validated like the flow validates it)."""
    from hwnas.search.detection.flow import parse_sections

    root = Path(parse_sections(raw, base)["dataset"].options.root)
    return root if root.is_absolute() else base / root


def ensure_data(raw: dict[str, Any], base: Path, synth: int | None, size: int, config: str) -> str | None:
    """Write the synthetic set where the config expects it when asked and missing; a
    missing root without ``--synth`` is one line saying how to make it."""
    root = dataset_root(raw, base)
    if root.is_dir():
        return None
    if synth is None:
        raise ConfigError(f"dataset.root: {root} does not exist; write the synthetic detection set there with "
                          f"`hwnas detect {config} --synth 2000`, or point dataset.root at a VOC/COCO folder")
    from hwnas.search.detection.synth import SynthSpec, write_synthetic

    # synth writes FOLDER/voc and FOLDER/coco: the config's root names one of them
    folder = root.parent if root.name in ("voc", "coco") else root
    held = max(6, synth // 10)
    write_synthetic(folder, SynthSpec(n_train=synth, n_val=held, n_test=held, size=size))
    if not root.is_dir():
        raise ConfigError(f"dataset.root: {root} is not where the synthetic set goes (it writes {folder}/voc and "
                          f"{folder}/coco); name one of those in the config")
    return f"wrote the synthetic detection set ({synth} train, {held} val, {held} test images of {size} px) to {folder}"


def run_stages(raw: dict[str, Any], out: Path, base: Path, stop_after: str | None) -> dict[str, Any]:
    """The flow up to and including ``stop_after`` (every stage when None); resumable."""
    from hwnas.search.detection import stages

    if stop_after is None:
        return dict(stages.run_flow(raw, out, base))
    out.mkdir(parents=True, exist_ok=True)
    run = stages.build_run(raw, base)
    net = stages.supernet_stage(run, out)
    res: dict[str, Any] = {"stopped_after": stop_after, "run_dir": str(out)}
    if stop_after != "supernet":
        search = stages.search_stage(run, net, out, stages.source_pricer(run.parts["hardware"]))
        res["search_best"] = search["best"]
        if stop_after == "final":
            stages.final_stage(run, net, search["best"]["arch"], out)
    return res


def measure_detector(raw: dict[str, Any], out: Path, base: Path, threads: int) -> dict[str, Any]:
    """Export the trained detector to ONNX (``RUN_DIR/detector.onnx``) and time it end to
    end on the hardware section's store, device and backend (the default timing protocol;
    the row lands in that store): the measured latency beside the summed primitives'."""
    from hwnas.nn.torch_import import export_module
    from hwnas.profilers.onnx_job import ModelSource, profile_model
    from hwnas.profilers.request import ProfileRequest
    from hwnas.profilers.timing import TimingProtocol
    from hwnas.search.detection import stages
    from hwnas.store import Store

    run = stages.build_run(raw, base)
    hw = run.parts["hardware"]
    if hw.store is None or hw.device not in ("cpu", "gpu") or not hw.backend:
        raise ConfigError("--measure: needs hardware: {store: FILE, device: cpu|gpu, backend: NAME} in the config "
                          f"(got store {hw.store}, device {hw.device!r}, backend {hw.backend!r})")
    test = json.loads((out / "test.json").read_text())
    det = stages.final_stage(run, stages.supernet_stage(run, out), test["arch"], out)
    res = run.dataset.resolution
    path = out / "detector.onnx"
    path.write_bytes(export_module(det, (1, 3, res, res), "detector"))
    request = ProfileRequest(backends=(hw.backend,), device=hw.device, protocol=TimingProtocol(threads=threads))
    with Store(hw.store) as store:
        got = profile_model(store, ModelSource(onnx=str(path)), request, per_node=False)
    b = got["backends"][0]
    if b.get("error"):
        raise ConfigError(f"--measure: {path} failed on {hw.backend}: {b['error']}")
    if b.get("median_ms") is None:  # measured before (same graph and settings): read the stored row
        with Store(hw.store) as store:
            rows = store.query(backend=hw.backend, kind="network", target=got["hash"], ok_only=True)
        b = {"median_ms": rows[-1]["median_ms"] if rows else None}
    return {"measured_latency_ms": b["median_ms"], "measured_on": f"{hw.backend} {got['device']} "
            f"({got['device_fingerprint']}), ONNX export of the derived detector, batch 1, {threads} thread(s)"}


def summary(res: dict[str, Any]) -> str:
    """The table a person reads: arch, mAPs, per-class AP, predicted latency."""
    if "test" not in res:
        best = res.get("search_best")
        tail = f"; best so far: {best['arch']} (map50 {best['perfs']['map50']:.3f})" if best else ""
        return f"stopped after the {res['stopped_after']} stage in {res['run_dir']}{tail}; rerun without --stop-after " \
               f"to continue"
    t = res["test"]
    rows = [{"item": "derived arch", "value": res["arch"]},
            {"item": "test mAP@0.5 (VOC rules)", "value": f"{t['map50']:.3f}"},
            {"item": "baseline mAP@0.5 (mean box)", "value": f"{res['baseline_mean_box']['map50']:.3f}"}]
    if t.get("coco_map") is not None:
        rows.append({"item": "test COCO mAP@[.5:.95]", "value": f"{t['coco_map']:.3f}"})
    for name, ap in zip(res["classes"], t["ap50_per_class"]):
        rows.append({"item": f"AP@0.5 {name}", "value": "n/a" if ap is None else f"{ap:.3f}"})
    rows.append({"item": "primitives (backbone + head)", "value": str(res["primitives"])})
    if res.get("predicted_latency_ms") is not None:
        rows.append({"item": "predicted latency ms (hardware source)", "value": f"{res['predicted_latency_ms']:.3f}"})
    if res.get("measured_latency_ms") is not None:
        rows.append({"item": "measured latency ms (end to end)", "value": f"{res['measured_latency_ms']:.3f}"})
    return format_table(rows, ["item", "value"])


def cmd_detect(args: argparse.Namespace) -> int:
    raw, base = load(args.config)
    note = ensure_data(raw, base, args.synth, args.synth_size, args.config)
    if note:
        print(note, file=sys.stderr)
    out = Path(args.run_dir or Path("runs") / Path(args.config).stem)
    if args.restart:
        for name in STAGE_FILES:
            (out / name).unlink(missing_ok=True)
    res = run_stages(raw, out, base, args.stop_after)
    if args.measure and "test" in res:
        res.update(measure_detector(raw, out, base, args.threads))
        (out / "measure.json").write_text(json.dumps({k: res[k] for k in ("measured_latency_ms", "measured_on",
                                                                           "predicted_latency_ms") if k in res}))
    res.setdefault("run_dir", str(out))
    emit(res, as_json=args.json, table=summary(res) + f"\nrun dir: {out} (test.json holds every figure)")
    return 0


def from_search(args: argparse.Namespace) -> int:
    """``hwnas search CONFIG`` given a detection config: the same flow as ``hwnas detect``
    (run dir, --restart and --json carry over; the search-only flags are refused)."""
    given = [f for f, v in (("--objective", args.objective), ("--budget-ms", args.budget_ms), ("--steps", args.steps),
                            ("--device", args.device), ("--ray-address", args.ray_address),
                            ("--nproc", args.nproc != 1)) if v]
    if given:
        raise ConfigError(f"{args.config} is a detection config: {', '.join(given)} do not apply (its sections set "
                          f"the budget; run: hwnas detect {args.config} --help)")
    print(f"{args.config} is a detection config: running it as `hwnas detect {args.config}`", file=sys.stderr)
    args.stop_after, args.synth, args.synth_size, args.measure, args.threads = None, None, 96, False, 1
    return cmd_detect(args)


def detector_primitives_of(config: str) -> tuple[Any, list[Any]]:
    """The backbone space and every primitive a derived detector of ``config`` may run:
    the space's primitives followed by the SSDLite head's (one head for every subnet)."""
    from hwnas.search.detection.backbone import feature_channels, feature_strides
    from hwnas.search.detection.flow import parse_sections
    from hwnas.search.detection.ssd import head_primitives, map_sizes

    raw, base = load(config)
    sec = parse_sections(raw, base)
    space = sec["search_space"].build()
    head, data = sec["head"], sec["dataset"].options
    if not dataset_root(raw, base).is_dir():
        raise ConfigError(f"dataset.root: {dataset_root(raw, base)} does not exist (the head's class count comes from "
                          f"it); write it with `hwnas detect {config} --synth 2000 --stop-after supernet`")
    from hwnas.search.build import build_component

    num_classes = build_component(sec["dataset"], seed=0).prepare().num_classes
    sizes = map_sizes(int(data.resolution), feature_strides(space), len(head.extra_channels))
    extras, preds = head_primitives(feature_channels(space), sizes, num_classes, head)
    items = list(space.primitives()) + [p for e in extras for p in e] + [p for t in preds for p in t]
    seen: dict[str, Any] = {}
    for p in items:
        seen.setdefault(p.key, p)
    return space, list(seen.values())


def profile_detector(args: argparse.Namespace, make_request: Callable[[argparse.Namespace], Any]) -> int:
    """``hwnas profile --detector CONFIG``: the detector's primitives into the store
    (``make_request`` turns the parsed flags into the profiler's typed request)."""
    from hwnas.profilers.runner import ProfileJob
    from hwnas.store import Store

    if args.space or args.networks or args.onnx or args.torch or args.kernels or args.fusion_rules:
        raise ConfigError("--detector profiles the detector's primitives: drop --space / --networks / --onnx / "
                          "--torch / --kernels / --fusion-rules")
    args.networks = 0
    request = make_request(args)
    space, prims = detector_primitives_of(args.detector)
    with Store(args.store) as store:
        s = ProfileJob(store, space, request, primitives=prims).run()
    emit(s.to_dict(), as_json=args.json, table=(
        f"{args.detector}: {len(prims)} detector primitives (backbone + head) on {s.device} "
        f"({s.device_fingerprint}) in {s.wall_s:.1f} s -> {s.store}\n" + format_table(
            s.rows(), ["backend", "primitives", "skipped", "failed", "flagged"])
        + f"\nnext: set hardware: {{store: {s.store}, device: {s.device}, backend: {request.backends[0]}}} in "
          f"{args.detector}, then: hwnas detect {args.detector}"))
    return 0


def add_commands(sub: Any) -> None:
    p = add_parser(sub, "detect", help="DetNAS-style detection search: supernet -> search -> final -> test",
                   example="hwnas detect configs/detnas-voc-cpu.yaml --synth 2000\n"
                           "hwnas detect configs/detnas-voc-cpu.yaml --stop-after supernet   # rerun to continue\n"
                           "hwnas detect configs/ofa-ssd-voc-cpu.yaml --run-dir runs/ofa-ssd --restart --json",
                   description="Run a detection config (one with a 'head:' section): train the backbone supernet "
                               "with the SSDLite head, search with the controller, train the derived detector and "
                               "test it (mAP@0.5, COCO mAP, per-class AP, predicted latency when the config has a "
                               "hardware section). Resumable: a rerun continues at the stage it was in.")
    p.add_argument("config", help="detection config (YAML with a head: section)")
    p.add_argument("--run-dir", help="output folder (default: runs/CONFIG_STEM)")
    p.add_argument("--stop-after", choices=STAGES, help="stop after this stage (a rerun continues from it)")
    p.add_argument("--restart", action="store_true", help="remove the run folder's stage files and start over")
    p.add_argument("--synth", type=positive, metavar="N",
                   help="when dataset.root is missing, write the synthetic set there first: N train images, "
                        "max(6, N/10) val and test images")
    p.add_argument("--synth-size", type=positive, default=96, help="--synth: image side in px (default: %(default)s)")
    p.add_argument("--measure", action="store_true",
                   help="after the test: time the derived detector end to end (exported to ONNX) on the config's "
                        "hardware store / device / backend, beside the predicted latency")
    p.add_argument("--threads", type=positive, default=1, help="--measure: inference threads (default: %(default)s)")
    p.set_defaults(func=cmd_detect)
