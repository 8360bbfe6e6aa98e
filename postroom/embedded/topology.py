"""The API and the workers as child processes: the real topology, started from one place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from postroom.embedded.ports import free_port


class Topology:
    """``postroom serve`` and ``postroom worker`` over the environment ``env``, logs in ``log_dir``."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, *, worker_processes: int = 2, worker_threads: int = 2
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        self.api_port = free_port()
        self.worker_processes = worker_processes
        self.worker_threads = worker_threads
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    @property
    def api_url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.api_port}"

    def _commands(self) -> dict[str, list[str]]:
        workers = ["--processes", str(self.worker_processes), "--threads", str(self.worker_threads)]
        return {
            "api": ["serve", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "worker": ["worker", *workers],
            "scheduler": ["scheduler"],
        }

    def _spawn(self, name: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "postroom", *self._commands()[name]],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stragglers can be killed as a whole
            )
        self._children.append((name, child))

    def start(self, timeout: float = 60.0) -> Topology:
        """Start API and workers; return once the API reports ready."""
        for name in self._commands():
            self._spawn(name)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def pid(self, name: str) -> int:
        """Process id of the running child ``name`` (``api``, ``worker`` or ``scheduler``)."""
        return next(child.pid for child_name, child in self._children if child_name == name)

    def kill(self, name: str) -> None:
        """SIGKILL the child ``name`` and every process it started, as a crash or OOM kill would."""
        for child_name, child in list(self._children):
            if child_name == name:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                self._children.remove((child_name, child))

    def wait_exited(self, name: str, timeout: float = 30.0) -> int:
        """Wait until the child ``name`` exits by itself; its exit code. It is forgotten, so
        :meth:`restart` can start it again."""
        for child_name, child in list(self._children):
            if child_name == name:
                code = child.wait(timeout)
                self._children.remove((child_name, child))
                return code
        raise LookupError(f"no running child {name!r}")

    def restart(self, name: str) -> None:
        """Start the child ``name`` again (after :meth:`kill` or :meth:`wait_exited`)."""
        self._spawn(name)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, child in self._children:
                if child.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {child.returncode}; see {self.log_dir}/{name}.log"
                    )
            try:
                response = httpx.get(f"{self.api_url}/readyz", timeout=5)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as error:
                last = type(error).__name__
            time.sleep(0.2)
        raise TimeoutError(f"API not ready after {timeout:.0f} s: {last}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (workers finish their current message), then wait; kill stragglers."""
        for _, child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, child in self._children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self._children.clear()

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
