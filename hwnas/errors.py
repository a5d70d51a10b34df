"""The one exception root of hwnas and its few subclasses.

Every error a user can cause derives from :class:`HwnasError`, so the CLI can print a
one-line message for it and exit non-zero without a traceback, while real bugs (any
other exception) still show their traceback.
"""
from __future__ import annotations


class HwnasError(Exception):
    """Root of every error hwnas raises on purpose."""


class ConfigError(HwnasError):
    """A YAML config, option or command-line value is wrong; the message names where."""


class InputError(ConfigError):
    """A file or path a user gave is missing, unreadable, undecodable or of the wrong kind."""


class RegistryError(HwnasError):
    """Unknown or duplicate component name."""


class StoreError(HwnasError):
    """The cost store is missing, unreadable, or of an unsupported schema version."""


class ValidationError(HwnasError, ValueError):
    """A record (Primitive, NetworkSpec, measurement) has a bad field."""


class ProfilingError(HwnasError):
    """A backend could not export, compile or time an item."""


class DependencyError(HwnasError):
    """An optional dependency is missing; the message names the extra to install."""


class IngestError(HwnasError):
    """An offline results / log file is malformed; the message names file and line."""


class ModelImportError(HwnasError):
    """An ONNX model (or torch factory) cannot be read, has a dynamic shape with no
    --input-shape, or uses an operator hwnas cannot map; the message names file and node."""


class CostModelError(HwnasError):
    """A cost model cannot be fit, saved, loaded or applied (e.g. a missing primitive)."""


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise DependencyError naming the extra.

    Used for heavy optional parts (TVM, onnxruntime-gpu, Ray, NVML) so that the base
    install stays small and the message says exactly what to install.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        what = f" for {purpose}" if purpose else ""
        raise DependencyError(
            f"{module} is not installed{what}: pip install 'hwnas[{extra}]' ({exc})"
        ) from exc


class AssetError(HwnasError):
    """A shipped asset is unknown, of the wrong kind, or fails its sha256 check."""
