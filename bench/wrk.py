"""wrk: the benchmark cases, the Lua request scripts, one run, and the parsing of its report."""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

WRK_THREADS = 2
WRK_TIMEOUT_S = 10

Target = Literal["app", "hello"]


@dataclass(frozen=True)
class Case:
    """One request shape. ``path`` and header values may use ``{product_id}`` and ``{token}``.

    wrk sends GET unless a Lua script says otherwise, so any other method needs ``script``
    (see :func:`keyed_request_script`).
    """

    name: str
    target: Target
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    catch_up: bool = False  # a write the saga works off: timed until it settles, measured last

    def __post_init__(self) -> None:
        if self.method != "GET" and self.script is None:
            raise ValueError(f"case {self.name}: {self.method} needs a wrk Lua script")


def body_request_script(method: str, body: str) -> str:
    """Lua for wrk: every request is ``method`` with the same ``body`` (and the ``-H``
    headers)."""
    level = 0
    while f"]{'=' * level}]" in body:
        level += 1
    return f'wrk.method = "{method}"\nwrk.body = [{"=" * level}[{body}]{"=" * level}]\n'


def keyed_request_script(method: str, *bodies: str) -> str:
    """Lua for wrk: every request carries a new ``Idempotency-Key`` header and the next of
    ``bodies`` in turn.

    The key is ``<run id>-<thread>-<counter>``; the run id is passed after ``--`` on wrk's
    command line, so warm-up and measured runs never replay each other's keys. Headers given
    with ``-H`` are kept.
    """
    if not bodies:
        raise ValueError("at least one body")
    text = "".join(bodies)
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    open_, close = f"[{'=' * level}[", f"]{'=' * level}]"
    lua_bodies = ", ".join(f"{open_}{body}{close}" for body in bodies)
    return f"""\
wrk.method = "{method}"
local bodies = {{ {lua_bodies} }}

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local prefix
local counter = 0
function init(args)
  prefix = args[1] .. "-" .. thread_id .. "-"
end

function request()
  counter = counter + 1
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format(nil, nil, headers, bodies[(counter % #bodies) + 1])
end
"""


def graphql_mutation_script(body: str) -> str:
    """Lua for wrk: POST ``body``, a GraphQL request whose ``{key}`` becomes a new key per
    request (``<run id>-<thread>-<counter>``, as :func:`keyed_request_script`), and count the
    answers that carry ``"errors"``: GraphQL refuses with a 200, which wrk counts as a success.
    The count is printed as ``GraphQL errors: N``, which :func:`parse_report` adds to the
    non-2xx answers."""
    level = 0
    while f"]{'=' * level}]" in body:
        level += 1
    quoted = f"[{'=' * level}[{body}]{'=' * level}]"
    return f"""\
wrk.method = "POST"
local template = {quoted}

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local prefix
local counter = 0
refused = 0
function init(args)
  prefix = args[1] .. "-" .. thread_id .. "-"
end

function request()
  counter = counter + 1
  local body = template:gsub("{{key}}", prefix .. counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 and body:find('"errors"', 1, true) then refused = refused + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("refused") end
  io.write(string.format("GraphQL errors: %d\\n", total))
end
"""


@dataclass(frozen=True)
class Measurement:
    req_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_REQ_PER_S = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_GRAPHQL_ERRORS = re.compile(r"^GraphQL errors: (\d+)$", re.MULTILINE)


def parse_report(report: str) -> Measurement:
    """Read req/s, p50, p99 (in ms), socket errors and non-2xx/3xx answers from ``--latency``
    output. wrk omits the error lines when their counts are zero."""
    req_per_s = _REQ_PER_S.search(report)
    percentiles = {p: float(v) * _UNIT_MS[unit] for p, v, unit in _PERCENTILE.findall(report)}
    if req_per_s is None or set(percentiles) != {"50", "99"}:
        raise ValueError(f"unexpected wrk output:\n{report}")
    socket_errors = _SOCKET_ERRORS.search(report)
    non_2xx = _NON_2XX.search(report)
    refused = _GRAPHQL_ERRORS.search(report)
    return Measurement(
        req_per_s=float(req_per_s.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        errors=sum(map(int, socket_errors.groups())) if socket_errors else 0,
        non_2xx=(int(non_2xx.group(1)) if non_2xx else 0)
        + (int(refused.group(1)) if refused else 0),
    )


def wrk_command(
    pin: list[str],
    url: str,
    connections: int,
    duration_s: int,
    headers: dict[str, str],
    script: Path | None,
) -> list[str]:
    """One wrk run's command line; ``pin`` is the CPU-pinning prefix (``taskset -c 1`` or
    nothing)."""
    command = [
        *pin,
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        f"{WRK_TIMEOUT_S}s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script), url, "--", uuid.uuid4().hex[:12]]
    else:
        command.append(url)
    return command


def run_wrks(commands: list[list[str]], duration_s: int) -> Measurement:
    """Several wrk runs at the same time (one per server of a multi-process case), as one
    measurement: the requests per second add up, p50 and p99 are the worse of the runs', the
    errors and non-2xx answers add up."""
    if len(commands) == 1:
        done = subprocess.run(
            commands[0], capture_output=True, text=True, check=True, timeout=duration_s + 60
        )
        return parse_report(done.stdout)
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for command in commands]
    reports = []
    try:
        for process in running:
            out, err = process.communicate(timeout=duration_s + 60)
            if process.returncode != 0:
                raise subprocess.CalledProcessError(process.returncode, process.args, out, err)
            reports.append(parse_report(out))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Measurement(
        req_per_s=sum(r.req_per_s for r in reports),
        p50_ms=max(r.p50_ms for r in reports),
        p99_ms=max(r.p99_ms for r in reports),
        errors=sum(r.errors for r in reports),
        non_2xx=sum(r.non_2xx for r in reports),
    )
