"""Load a trace-event JSON file with the trace importer of a headless Chromium's own DevTools.

Chromium no longer ships chrome://tracing's viewer (the Debian build has neither
the page nor its scripts), but every build bundles the DevTools frontend, whose
Performance panel opens trace-event files with its trace engine
(`models/trace/trace.js`). This module starts `chromium --headless` in a
temporary profile, speaks the DevTools protocol over the pipe that
`--remote-debugging-pipe` opens on descriptors 3 and 4 (JSON messages ended by
a NUL byte, so no port and no websocket library), opens the bundled trace
page, and hands the file to that engine, as the panel does when a file is
dropped on it. `load_timeline` returns what the engine built: its processes,
threads and slices, and the flows it bound to slices.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120.0  # seconds for the whole load, start-up included
LOG_LINES = 5  # of Chromium's stderr, quoted when it fails
CLOSE_TIMEOUT = 10.0  # seconds Chromium gets to quit before it is killed
TRACE_PAGE = "devtools://devtools/bundled/trace_app.html"
PIPE_IN, PIPE_OUT = 3, 4  # the descriptors --remote-debugging-pipe reads and writes

# Run in the trace page: parse the file as the panel's loader does (an object
# with traceEvents and optional metadata), build the model with every handler,
# then read back per process and thread what the Renderer handler holds and
# the flows the Flows handler bound to events.
_LOAD = """(async (text) => {
  const Trace = await import('./models/trace/trace.js');
  const doc = JSON.parse(text);
  const model = Trace.TraceModel.Model.createWithAllHandlers();
  await model.parse(doc.traceEvents, {metadata: doc.metadata ?? {}, isFreshRecording: false});
  const data = model.parsedTrace(0).data;
  const event = (e) => ({ph: e.ph, name: e.name, pid: e.pid, tid: e.tid, ts: e.ts});
  return JSON.stringify({
    processes: [...data.Renderer.processes].map(([pid, proc]) => ({
      pid,
      threads: [...proc.threads].map(([tid, thread]) => ({
        tid, name: thread.name ?? null, slices: thread.entries.filter((e) => e.ph === 'X').map(event)})),
    })),
    flows: data.Flows.flows.map((flow) => flow.map(event)),
  });
})"""


def find() -> str | None:
    """The Chromium on PATH, if any."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def _above_pipe_fds(*fds: int) -> tuple[int, ...]:
    """The descriptors moved above 3 and 4, so that putting one there never overwrites another."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, PIPE_OUT + 1) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved


class Browser:
    """A headless Chromium driven over its DevTools pipe; killed on close."""

    def __init__(self, exe: str, profile: Path) -> None:
        self.deadline = time.monotonic() + TIMEOUT
        self.log = profile.with_name(profile.name + ".log")  # Chromium's stderr, for the failure messages
        to_chrome_r, self._w = _above_pipe_fds(*os.pipe())
        self._r, from_chrome_w = _above_pipe_fds(*os.pipe())

        def to_3_and_4() -> None:  # in the child, before exec: the pipe's ends where Chromium looks
            os.dup2(to_chrome_r, PIPE_IN)
            os.dup2(from_chrome_w, PIPE_OUT)

        # Chromium's scratch directories (its singleton socket's among them)
        # go under a short directory of our own, removed at close: left in
        # the shared /tmp they would outlive the test. Short, because a
        # socket's path is limited to 107 bytes.
        self._scratch = tempfile.mkdtemp(prefix="ktc-")
        # --no-zygote: no helper that outlives the browser as a zombie where pid 1 reaps none.
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [exe, "--headless", "--no-sandbox", "--no-zygote", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                env=dict(os.environ, TMPDIR=self._scratch),
                pass_fds=(PIPE_IN, PIPE_OUT), preexec_fn=to_3_and_4, start_new_session=True,
            )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        """Ask Chromium to quit (it reaps its own helpers), then kill whatever of its session is left."""
        try:
            os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=CLOSE_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the renderers and helpers too
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _stderr(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return " | ".join(lines[-LOG_LINES:])

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT:.0f} s: {self._stderr()}")
            data = os.read(self._r, 1 << 16)
            if not data:
                raise EOFError(f"Chromium closed its DevTools pipe (exit {self.proc.poll()}): {self._stderr()}")
            self._buf += data
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """One command's result; events that arrive meanwhile are kept in `events`."""
        self._last_id += 1
        command: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        os.write(self._w, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") != self._last_id:
                self.events.append(message)
            elif "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            else:
                return message["result"]

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        while True:
            for n, message in enumerate(self.events):
                if message.get("method") == method and message.get("sessionId") == session:
                    return self.events.pop(n)
            self.events.append(self._message())


def load_timeline(exe: str, trace: Path, profile: Path) -> dict[str, Any]:
    """What Chromium's DevTools trace engine makes of the trace-event file `trace`."""
    browser = Browser(exe, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        nav = browser.send("Page.navigate", {"url": TRACE_PAGE}, session)
        if "errorText" in nav:
            raise RuntimeError(f"{TRACE_PAGE}: {nav['errorText']}")
        browser.wait_event("Page.loadEventFired", session)
        expression = f"{_LOAD}({json.dumps(trace.read_text())})"
        answer = browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                   "returnByValue": True}, session)  # fmt: skip
        if "exceptionDetails" in answer:
            raise RuntimeError(f"the trace engine failed: {answer['exceptionDetails']}")
        loaded: dict[str, Any] = json.loads(answer["result"]["value"])
        return loaded
    finally:
        browser.close()
