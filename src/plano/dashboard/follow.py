"""A service's log followed live, as Server-Sent Events: the follower (`docker logs
--follow`, ops.logs.logs_argv) runs as a child process of the dashboard for as long as the
page that asked for it stays; each of its lines is masked (ops.logs.shown) and sent as one
event. The follower is killed when the browser goes away (ASGI's http.disconnect, which
uvicorn sends as the connection closes, watched beside the follower's output), when the stream
has run for STREAM_SECONDS (the browser's EventSource then connects again), and when the
dashboard stops. At most FOLLOWERS_MAX run at once.

The events: `reset` first (the page drops the lines it was rendered with: the follower
starts with the last ops.logs.LINES lines itself), then one message per line, and `end`
with why the stream ended (the container stopped: the page connects again after `retry`,
to the new container of a deploy)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from plano.ops.logs import shown

FOLLOWERS_MAX = 32
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 3600.0
RETRY_MS = 3000
IDLE_RETRY_MS = 10000  # a service that does not run: asked again this often
READ_LIMIT = 1 << 20  # bytes of one line read (longer lines are cut by ops.logs.shown anyway)


async def disconnected(receive: Callable[[], Awaitable[dict]]) -> None:
    """Until the browser goes away (ASGI's http.disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class TooMany(Exception):
    """FOLLOWERS_MAX followers run already."""


def event(data: str = "", name: str | None = None) -> str:
    """One Server-Sent Event (`data` one line: a log line never holds a newline here)."""
    return (f"event: {name}\n" if name else "") + f"data: {data}\n\n"


@dataclass
class Followers:
    """The follower processes running now (their PIDs), to bound and to end them."""

    limit: int = FOLLOWERS_MAX
    running: set[int] = field(default_factory=set)

    def stop_all(self) -> None:
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.running.clear()

    async def stream(self, argv: list[str], secret_values: set[str], receive: Callable[[], Awaitable[dict]],
                     clock: Callable[[], float] = time.monotonic) -> AsyncIterator[str]:
        """The events of `argv`'s output; `receive` is the request's (ASGI): it says when
        the browser went away."""
        if len(self.running) >= self.limit:
            raise TooMany(f"{self.limit} logs are followed already; close a page that follows one")
        process = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                       stderr=subprocess.STDOUT, limit=READ_LIMIT)
        self.running.add(process.pid)
        return self.events(process, secret_values, receive, clock)

    async def events(self, process, secret_values: set[str], receive: Callable[[], Awaitable[dict]],
                     clock: Callable[[], float]) -> AsyncIterator[str]:
        started = clock()
        gone = asyncio.ensure_future(disconnected(receive))
        reading = None
        try:
            yield f"retry: {RETRY_MS}\n" + event(name="reset")
            while (left := STREAM_SECONDS - (clock() - started)) > 0:
                reading = reading or asyncio.ensure_future(process.stdout.readline())
                done, _ = await asyncio.wait({reading, gone}, timeout=min(KEEPALIVE_SECONDS, left),
                                             return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    return
                if reading not in done:
                    yield ": keepalive\n\n"
                    continue
                finished, reading = reading, None
                try:
                    line = finished.result()
                except ValueError:  # a line over READ_LIMIT: what was read of it is dropped
                    continue
                if not line:
                    await process.wait()
                    yield event(f"the log ended (exit code {process.returncode}): the container stopped or was replaced", "end")
                    return
                yield event(shown(line.decode("utf-8", "replace"), secret_values))
            yield event("followed for an hour: connecting again", "end")
        finally:
            for task in (reading, gone):
                if task is not None:
                    task.cancel()
            await self.stop(process)

    async def stop(self, process) -> None:
        """Kill the follower (at once: a cancelled task may not wait), then reap it."""
        self.running.discard(process.pid)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
