"""One run per directory, and no process of a run outliving it.

Snakemake's own lock does not protect a running workflow: a second invocation in the same
directory that finds nothing to do ends by deleting the whole ``.snakemake/locks/`` folder,
the first run's locks included (``FilePersistence._delete_locks`` in Snakemake 9.27.1, the newest
release), and a third then runs the first one's jobs a second time. So the workflow takes an
exclusive ``flock`` on the run directory when it starts and keeps it until the process ends (the
kernel drops it then, even after ``kill -9``).

Rule scripts run as child processes of Snakemake (and the Bayesian one starts chain processes of
its own). After ``kill -9`` of Snakemake they would carry on and write into the directory a later
run uses, so each script watches the Snakemake process and ends itself and its children when that
process is gone.
"""

import fcntl
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

RUN_PID = "SINGLEARM_RUN_PID"  # environment: the Snakemake process a rule script belongs to
_HELD = []  # open descriptors of held run directories (the lock lives as long as the descriptor)


class RunDirectoryBusy(RuntimeError):
    """Another run holds the run directory."""


def hold_run_directory(directory):
    """Take an exclusive lock on ``directory`` for the rest of this process.

    Parameters
    ----------
    directory : str or Path
        The run directory (Snakemake's working directory, ``--directory``).

    Returns
    -------
    list of Path
        Stale Snakemake lock files that were removed: with the lock held no other run of this
        workflow is alive, so locks left in ``.snakemake/locks/`` by a killed run are stale.

    Raises
    ------
    RunDirectoryBusy
        When another process holds the lock.
    """
    directory = Path(directory).resolve()
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirectoryBusy(f"another run is using {directory}: wait for it to finish (or stop it) and "
                               "start again") from None
    _HELD.append(fd)
    os.environ[RUN_PID] = str(os.getpid())
    stale = sorted((directory / ".snakemake" / "locks").glob("*.lock"))
    for lock in stale:
        lock.unlink(missing_ok=True)
    return stale


def _proc_stat(pid):
    """(state, parent pid, start time) of a process from /proc (Linux), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (command) "
    return fields[0], int(fields[1]), fields[19]


def _alive(pid, started):
    """Whether process ``pid`` (started at ``started``, per /proc) is still running, not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return started is None  # no /proc: os.kill had the last word
    return stat[0] != "Z" and stat[2] == started  # a reused process id has another start time


def _descendants(pid):
    """Process ids of every descendant of ``pid`` (from /proc; multiprocessing's children elsewhere)."""
    parents = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _proc_stat(entry.name)
        if stat is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return set(found) | {p.pid for p in multiprocessing.active_children()}


def _end_process_tree():
    for pid in _descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)


def die_with_run(poll=0.5):
    """End this process and its children as soon as the Snakemake run that started it is gone.

    Does nothing outside a run (no ``SINGLEARM_RUN_PID`` in the environment).

    Parameters
    ----------
    poll : float
        Seconds between checks.

    Returns
    -------
    threading.Thread or None
        The watching (daemon) thread.
    """
    pid = os.environ.get(RUN_PID)
    if not pid:
        return None
    pid = int(pid)
    stat = _proc_stat(pid)
    started = stat[2] if stat else None

    def watch():
        while _alive(pid, started):
            time.sleep(poll)
        print(f"singlearm: the Snakemake run (process {pid}) is gone; stopping this job", file=sys.stderr)
        _end_process_tree()

    thread = threading.Thread(target=watch, name="die_with_run", daemon=True)
    thread.start()
    return thread
