"""Run a real `collab serve` process on port 0 for tests, and stop or kill it.

The server prints `collab serving on http://HOST:PORT ...` once it listens; that
line is how tests learn the port. Everything else it prints goes to a log file
next to the database so a failing test can show it.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.waits import TIMEOUT

_READY = re.compile(r"collab serving on http://([^:\s]+):(\d+)")


class ServerProcess:
    """A `python -m collab serve` child process bound to 127.0.0.1:0, storing in the
    SQLite file `db_path` or, if given, at `database_url` (its log stays beside
    `db_path` either way)."""

    def __init__(self, db_path: Path, env: dict[str, str] | None = None, args: tuple = (),
                 database_url: str | None = None, max_files: int | None = None):
        self.db_path = Path(db_path)
        self.database_url = database_url or f"sqlite:///{self.db_path}"
        self.env = dict(os.environ)
        self.env.pop("PORT", None)
        self.env.pop("DATABASE_URL", None)
        self.env.update(env or {})
        self.args = tuple(args)
        #: The server's file descriptor limit (RLIMIT_NOFILE, soft and hard); None: ours.
        self.max_files = max_files
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = self.db_path.with_suffix(".log")
        #: The line the server printed once it listened.
        self.ready_line = ""

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """Base URL for y-websocket clients: `new WebsocketProvider(ws_url, name, doc)`."""
        return f"ws://127.0.0.1:{self.port}/yjs"

    def start(self) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "collab", "serve", "--host", "127.0.0.1", "--port", "0",
            "--database-url", self.database_url, *self.args,
        ]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, env=self.env, text=True, bufsize=1,
            preexec_fn=None if self.max_files is None else self._limit_files,
        )
        deadline = time.monotonic() + TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited before listening; log:\n{self.log()}")
            log.write(line)
            match = _READY.search(line)
            if match:
                self.port = int(match.group(2))
                self.ready_line = line.strip()
                return self
        raise RuntimeError(f"server did not listen within {TIMEOUT}s; log:\n{self.log()}")

    def _limit_files(self) -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_files, self.max_files))

    def rss_mib(self) -> float:
        """The server's resident memory now, in MiB (Linux /proc)."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush; what was committed must survive."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
