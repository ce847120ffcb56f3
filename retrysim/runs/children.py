"""Child processes that cannot outlive retrysim: the kernel kills them when their parent dies.

Why: every child a command starts (a private redis-server, a local worker pool's processes) is
stopped by the command's clean-up, which runs on a normal exit, an exception, Ctrl-C, SIGTERM
and SIGHUP. Nothing runs on SIGKILL (or a crash), and a child left behind keeps its CPU, its
memory and its listening port. On Linux a process can ask the kernel for a signal when its
parent dies (``prctl(PR_SET_PDEATHSIG)``): :func:`die_with_parent` asks for SIGKILL (these
children hold nothing worth saving), then checks that its parent is still the one that started
it, since the parent may have died before the request was made.

The signal follows the *thread* that started the child: a child started from a thread that
ends before it is killed then. Every caller here starts its children from the thread that
waits for them. Elsewhere than Linux the functions do nothing; the clean-up on exit and on
signals still holds.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

#: ``prctl``'s option that sets the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once in the parent (a child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_PRCTL = _load_prctl()


def supported() -> bool:
    """Whether children can be tied to this process's life here (Linux)."""
    return _PRCTL is not None


def die_with_parent(parent: int) -> None:
    """In a child started by process ``parent``: be killed with SIGKILL when that parent dies.

    If the parent is already gone (it died between starting the child and this call), the
    child ends itself at once. Does nothing where ``prctl`` is not available.
    """
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def tied_to_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that ties the child to this process's
    life (None where that is not supported, so Popen is given no preexec_fn at all)."""
    if _PRCTL is None:
        return None
    return functools.partial(die_with_parent, os.getpid())
