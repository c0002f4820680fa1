"""CPU time and memory of process trees, read from /proc (Linux).

A tree's CPU time is the sum over its live processes of their own user+system time plus that of
their reaped children (cutime/cstime): a child that exited during a measurement (a PostgreSQL
backend whose connection closed) is then still counted, once, in its parent's figure.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """`root` and its descendants, alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        if _stat(pid) is not None:
            found.append(pid)
            queue.extend(children.get(pid, []))
    return found


def cpu_seconds(roots: list[int]) -> float:
    """User+system CPU seconds used so far by the trees under `roots` (reaped children included)."""
    total = 0
    for root in roots:
        for pid in tree(root):
            fields = _stat(pid)
            if fields is not None:
                # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat (11-14 after the name).
                total += sum(int(value) for value in fields[11:15])
    return total / _TICK


def rss_mib(roots: list[int]) -> float:
    """Resident memory of the trees under `roots`, in MiB."""
    pages = 0
    for root in roots:
        for pid in tree(root):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, IndexError):
                pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE / 2**20


def postmaster_pid(pgdata: Path) -> int:
    """The PostgreSQL server's main process for a data directory (first line of postmaster.pid)."""
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
