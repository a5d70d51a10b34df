"""Serving the dashboard: bad input is one line before anything listens.

Why a port check of our own: werkzeug's server prints its own message and exits when the
port is taken; ``hwnas`` errors are one line naming the item, so the port is tried first
(with the same address-reuse flag the server uses, so a port in TIME_WAIT is not refused).
"""
from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path
from typing import Any

from hwnas.errors import InputError

log = logging.getLogger(__name__)


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on (or one we may not bind) in one line."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected 0..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: cannot resolve ({exc.strerror})") from None
    fam, _, _, _, addr = infos[0]
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"--port {port}: already in use on {host}; choose another (--port N)") from None
            raise InputError(f"--port {port} on {host}: cannot listen ({exc.strerror})") from None


def make_server(runs: str | Path, store: str | Path | None, host: str = "127.0.0.1", port: int = 8050) -> Any:
    """A threaded WSGI server for the app, bound and ready (``serve_forever`` to run;
    ``server_port`` is the port really bound, useful with ``port=0``)."""
    from werkzeug.serving import make_server as wz_make_server

    from hwnas.dashboard.app import create_app

    app = create_app(runs, store)
    check_port(host, port)
    try:
        return wz_make_server(host, port, app, threaded=True)
    except (OSError, SystemExit):  # lost a race for the port after the check
        raise InputError(f"--port {port}: already in use on {host}; choose another (--port N)") from None


def serve(runs: str | Path, store: str | Path | None, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve until interrupted."""
    srv = make_server(runs, store, host, port)
    log.info("dashboard on http://%s:%d/", host, srv.server_port)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


__all__ = ["check_port", "make_server", "serve"]
