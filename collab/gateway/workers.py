"""`collab serve --workers N`: N server processes on one port, one per core.

The parent binds the port first (so port 0 resolves to one real port for
everyone), then starts N `collab serve` children that each bind it again
with SO_REUSEPORT: the kernel spreads new connections across them. The
children share the store and Redis (leases decide which one runs an actor).
The parent prints the ready line once every child is listening, passes
SIGTERM/SIGINT on, restarts a child that dies unexpectedly, and exits when
all have stopped. If the port cannot be bound, or a child exits START_ATTEMPTS
times in a row before it is listening (the store unreachable: it said why), the
parent stops the others and exits with status 1 rather than restarting children
that cannot start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys

from collab.config import Settings
from collab.logs import announce

log = logging.getLogger(__name__)

#: Set in the children: bind with SO_REUSEPORT, and run one process only.
REUSE_PORT_ENV = "COLLAB_REUSE_PORT"
_READY = re.compile(rb"collab serving on http://\S+")
#: Seconds between restarts of a child that keeps dying.
RESTART_DELAY = 1.0
#: Times in a row a child may exit before it listens before the server gives up:
#: once can be a passing race (two children creating one SQLite file at once);
#: three times is a store that is not there.
START_ATTEMPTS = 3
#: Exit status when the server could not start (the store unreachable, the port
#: taken): nothing was served.
EXIT_CANNOT_START = 1


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) host:port with SO_REUSEPORT: fixes the port for the children."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def run_workers(settings: Settings, workers: int, argv: list[str]) -> int:
    try:
        reserved = reserve_port(settings.host, settings.port)
    except OSError as exc:
        log.critical("cannot listen on %s:%d: %s", settings.host, settings.port,
                     exc.strerror or exc)
        return EXIT_CANNOT_START
    port = reserved.getsockname()[1]
    env = dict(os.environ, **{REUSE_PORT_ENV: "1", "WEB_CONCURRENCY": "1"})
    command = [sys.executable, "-m", "collab", *_with_port(argv, settings.host, port)]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    children: list[asyncio.subprocess.Process | None] = [None] * workers
    ready = [asyncio.Event() for _ in range(workers)]
    failed_to_start: list[int] = []

    async def keep(index: int) -> None:
        failed_starts = 0
        while not stopping.is_set():
            proc = await asyncio.create_subprocess_exec(*command, env=env,
                                                        stdout=asyncio.subprocess.PIPE)
            children[index] = proc
            assert proc.stdout is not None
            listening = False
            async for line in proc.stdout:
                if _READY.search(line):
                    listening = True
                    ready[index].set()
                else:
                    sys.stdout.buffer.write(line)
            code = await proc.wait()
            if stopping.is_set():
                return
            failed_starts = 0 if listening else failed_starts + 1
            if failed_starts >= START_ATTEMPTS:
                log.critical("worker %d could not start (exit status %s, %d times): stopping",
                             index, code, failed_starts)
                failed_to_start.append(index)
                stopping.set()
                return
            log.error("worker %d exited with %s; restarting it", index, code)
            await asyncio.sleep(RESTART_DELAY)

    keepers = [asyncio.create_task(keep(i)) for i in range(workers)]

    async def all_ready() -> None:
        await asyncio.gather(*(event.wait() for event in ready))

    waits = [asyncio.ensure_future(all_ready()), asyncio.ensure_future(stopping.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not stopping.is_set():
        announce(f"collab serving on http://{settings.host}:{port} ({workers} workers)",
                 settings.log_format)
    await stopping.wait()
    for proc in children:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*keepers, return_exceptions=True)
    reserved.close()
    return EXIT_CANNOT_START if failed_to_start else 0


def _with_port(argv: list[str], host: str, port: int) -> list[str]:
    """`argv` (the parent's arguments) with --host/--port set and --workers dropped."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--host", "--port", "--workers"):
            skip = True
            continue
        if arg.startswith(("--host=", "--port=", "--workers=")):
            continue
        out.append(arg)
    return [*out, "--host", host, "--port", str(port)]
