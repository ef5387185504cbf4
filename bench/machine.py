"""The machine: CPU pinning, how busy the pinned cores are, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path


def pin(core: int) -> list[str]:
    """``taskset -c CORE`` when taskset exists and the core is ours to use, else nothing."""
    if shutil.which("taskset") and core in os.sched_getaffinity(0):
        return ["taskset", "-c", str(core)]
    return []


def layout(servers: int) -> tuple[list[int], int | None, str]:
    """Cores for ``servers`` app processes and for wrk: one core each when the machine has
    enough (servers on the first cores, wrk on the next); otherwise the servers take a core
    each in turn and wrk is not pinned, sharing them. Returns (server cores, wrk core or None,
    a line saying which)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= servers + 1:
        return cores[:servers], cores[servers], (
            f"servers on cores {cores[:servers]}, wrk on core {cores[servers]}")
    chosen = [cores[i % len(cores)] for i in range(servers)]
    return chosen, None, (
        f"{len(cores)} cores for {servers} servers and wrk: servers on cores {chosen}, "
        "wrk not pinned (it shares the servers' cores)")


def _ticks(cores: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks since boot of each core, from /proc/stat (Linux)."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            values = [int(value) for value in fields]
            idle = values[3] + values[4]  # idle + iowait
            ticks[int(name[3:])] = (sum(values) - idle, sum(values))
    return ticks


def busy(cores: tuple[int, ...], seconds: float = 1.0) -> dict[int, float]:
    """The fraction of the next ``seconds`` each core spends busy."""
    before = _ticks(cores)
    time.sleep(seconds)
    after = _ticks(cores)
    return {
        core: round((busy_now - before[core][0]) / max(total - before[core][1], 1), 2)
        for core, (busy_now, total) in after.items()
    }


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
