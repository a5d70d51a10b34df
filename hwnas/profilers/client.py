"""Parent side of the measuring child process (see :mod:`hwnas.profilers.worker`).

Why its own module: the timeout and crash handling is the part of the runner that must
be right for a job to survive anything an item does, so it is kept small and testable.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
from typing import Any, Mapping

from hwnas.errors import ProfilingError
from hwnas.profilers.messages import WorkerConfig, WorkerReply

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 180.0


class WorkerClient:
    """Starts the child on demand, sends one request at a time, enforces timeouts.

    A timed-out or crashed child is killed and replaced on the next request, so each
    failure costs exactly one item.
    """

    def __init__(self, config: WorkerConfig, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[str] | None = None
        self.versions: dict[str, str] = {}
        self._stderr: Any = None
        self.restarts = 0
        self._ready = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the child and wait until it is ready (or raise ProfilingError)."""
        if self.proc is None:
            self.spawn()
        self._handshake()

    def spawn(self) -> None:
        """Start the child without waiting for it: it imports its runtimes while the
        caller prepares the job; the first request (or :meth:`start`) waits for it."""
        self._ready = False
        self._stderr = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Stand-alone thread settings for native runtimes in the child.
        env["OMP_NUM_THREADS"] = str(self.config.threads)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hwnas.profilers.worker", json.dumps(self.config.to_dict())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the child
        )

    def _handshake(self) -> None:
        if self._ready:
            return
        hello = self._read_line(STARTUP_TIMEOUT_S)
        if hello is None:
            err = self._stderr_tail()
            self.kill()
            raise ProfilingError(f"{self.config.backend} worker did not start: {err or 'no output'}")
        msg = json.loads(hello)
        if not msg.get("ready"):
            self.kill()
            raise ProfilingError(f"{self.config.backend}: {msg.get('error', 'worker failed to start')}")
        self.versions = dict(msg.get("versions") or {})
        self._ready = True

    def kill(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):  # pragma: no cover
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    if f:
                        f.close()
                except OSError:
                    pass
        self.proc = None
        self._ready = False
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Ask the child to exit (EOF on stdin), then make sure it is gone; a child spawned
        ahead and never used is killed (it may still be importing its runtimes)."""
        if self.proc is not None and self.proc.stdin and self._ready:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    # -- requests ------------------------------------------------------------------------
    def _read_line(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return None
            line = self.proc.stdout.readline()
            return line if line else None
        finally:
            sel.close()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            lines = [ln.strip() for ln in self._stderr.read().splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    def request(self, kind: str, spec: Mapping[str, Any], timeout: float) -> WorkerReply:
        """Measure one item; its samples or its error.

        Never raises for an item's own failure: a timeout or a crash becomes an error
        reply. It raises ProfilingError only if the child cannot be started at all.
        """
        if self.proc is not None and not self._ready:
            self._handshake()  # spawned ahead: a child that failed to start raises here, as start() does
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.kill()
                self.restarts += 1
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        t0 = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps({"kind": kind, "spec": dict(spec)}) + "\n")
            self.proc.stdin.flush()
            line = self._read_line(timeout)
        except (BrokenPipeError, OSError):
            line = None
        if line is not None:
            return WorkerReply.from_dict(json.loads(line))
        elapsed = time.perf_counter() - t0
        if self.proc.poll() is None and elapsed >= timeout * 0.99:
            self.kill()
            return WorkerReply.failure(f"timeout: no result after {timeout:g} s")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        rc = self.proc.returncode
        tail = self._stderr_tail()
        self.kill()
        return WorkerReply.failure(f"crash: worker exited with status {rc}" + (f" ({tail})" if tail else ""))
