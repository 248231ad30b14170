"""Local worker processes that end with their parent, and stop between replications when asked.

A pool is stopped by asking, not by killing: a worker killed while it sends a chunk's
result leaves the pool's manager thread waiting for the rest of the message for ever
(shutdown, and so the exit, would hang). So the parent sets an event that every worker checks
between replications; a worker that sees it gives up its chunk at once, and the chunks not
started are cancelled.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_stop: Any = None  # in a worker: its pool's "stop now" event (None elsewhere)


class Cancelled(Exception):
    """Raised in a worker of a pool being stopped: nobody wants its chunk any more."""


def check_cancelled() -> None:
    """Between replications: a worker of a pool being stopped gives up its chunk."""
    if _stop is not None and _stop.is_set():
        raise Cancelled


@contextlib.contextmanager
def local_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process, and which, if the block ends by an
    exception (Ctrl-C, SIGTERM, an error, a caller that stopped reading), stops within one
    replication per worker instead of first running every chunk submitted."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    stop = context.Event()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_start_worker, initargs=(os.getpid(), stop)) as pool:
        try:
            yield pool
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _start_worker(parent: int, stop: Any) -> None:
    """Pool initializer: a worker leaves signals to its parent and ends with it.

    Ctrl-C and SIGTERM are the parent's to handle (it stops the pool, see the module's
    docstring), so workers ignore both. Against SIGKILL of the parent, which runs no cleanup
    and would leave workers idle for ever, holding the caller's stdout and stderr open,
    Linux's PR_SET_PDEATHSIG has the kernel kill the worker the moment its parent dies: no
    polling thread, no delay, and it works while the worker is busy in C code. (The kernel
    sends it when the thread that started the pool ends; a pool never outlives the call that
    made it.) The getppid check covers a parent that died before prctl ran. Elsewhere only
    the parent's own cleanup stops the workers.
    """
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
