"""Joining Ray: a local instance by default, a cluster by address; bounded, one-line errors.

Ray is the optional extra ``hwnas[ray]`` and is imported only here, lazily. Why the
checks before ``ray.init``: Ray waits a long time (and retries) for an address that
does not answer, and a task asking for a resource no node has waits forever; both are
user mistakes that must end at once with one line naming the option.
"""
from __future__ import annotations

import logging
import socket
from typing import Any

from hwnas.errors import ConfigError, require

log = logging.getLogger(__name__)

#: Seconds to wait for a Ray address to accept a connection.
CONNECT_TIMEOUT_S = 5.0
DEFAULT_PORT = 6379


def ray_module() -> Any:
    return require("ray", "ray", "parallel evaluation and device farms")


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line ConfigError unless something listens at ``address`` (HOST[:PORT];
    ``ray://`` client addresses and ``auto`` are left to Ray)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port_s = address.rpartition(":") if ":" in address else (address, "", str(DEFAULT_PORT))
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"--ray-address: expected HOST:PORT, got {address!r}") from None
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"--ray-address {address}: no Ray cluster answers ({reason} after at most "
                          f"{timeout:g} s)") from None


def connect(address: str | None = None, *, num_cpus: int | None = None, resources: dict[str, float] | None = None,
            num_gpus: int | None = None) -> Any:
    """Ray, initialised: the running instance if there is one, else ``address`` (a
    cluster) or a new local instance (``num_cpus`` / ``resources`` for it)."""
    ray = ray_module()
    if address:
        check_address(address)  # even when Ray runs: a wrong address is the user's mistake to hear of
    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, resources=resources or None, include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    return ray


def require_resource(ray: Any, name: str, address: str | None) -> float:
    """How much of custom resource ``name`` the cluster has; ConfigError when no node has it."""
    total = ray.cluster_resources()
    if total.get(name, 0) <= 0:
        known = sorted(k for k in total if not k.startswith("node:") and k not in ("memory", "object_store_memory"))
        where = f"the Ray cluster at {address}" if address else "the local Ray instance"
        raise ConfigError(f"--device-resource {name}: no node of {where} advertises it "
                          f"(resources: {', '.join(known) or 'none'})")
    return float(total[name])
