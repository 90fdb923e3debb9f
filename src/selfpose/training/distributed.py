"""Multi-process data-parallel training on one machine (CPU, gloo).

:func:`launch` starts ``world_size`` processes (``torch.multiprocessing``
spawn), joins them into a gloo process group on a free port of 127.0.0.1
(nothing listens beyond the loopback interface) and returns each rank's
return value. The helpers below are no-ops when torch.distributed is not
initialised, so the loop runs unchanged with one process.

The run folder's lock (:func:`selfpose.outputs.inplace_output`) is taken by
the launching process before :func:`launch` and held until every rank has
returned: the spawned ranks belong to it and never take it themselves (they
do not inherit its file descriptor), so a second writer of the folder is
refused for the whole multi-process run, and a killed parent frees it.

Ctrl-C during a multi-process run: the terminal signals every process; the
parent keeps waiting while the ranks agree to stop (:func:`any_true`), save a
checkpoint and return, then it re-raises the interrupt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist

from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

#: How long a rank waits for the others (a checkpoint save, a slow step) before failing.
TIMEOUT = timedelta(minutes=30)


class DistributedError(SelfposeError, RuntimeError):
    """The process group could not be set up or a rank failed."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def any_true(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (small, picklable, sent between live processes only), in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    """Key-wise mean of scalar dicts (keys missing on some ranks average over those that have them)."""
    keys: list[str] = []
    for d in dicts:
        keys += [k for k in d if k not in keys]
    return {k: sum(d[k] for d in dicts if k in d) / sum(1 for d in dicts if k in d) for k in keys}


def wrap_ddp(module: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``module`` when distributed, else ``module``.

    ``find_unused_parameters`` must be True for a module whose forward leaves
    some trainable parameters without gradient (a head used only in stage 2);
    it costs a walk of the autograd graph per step, so it is off by default.
    """
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, find_unused_parameters=find_unused_parameters)


def params_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters (to check that replicas agree).

    Buffers (BatchNorm statistics) are left out: DDP broadcasts rank 0's
    before every forward, so the other ranks' copies legitimately differ
    after the last step, and checkpoints hold rank 0's.
    """
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(module.named_parameters()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _entry(rank_: int, fn: Callable, world: int, port: int, queue, args: tuple) -> None:
    if sys.platform.startswith("linux"):
        # gloo picks its interface from the host name, which may not resolve
        # on a machine without network; the loopback interface always works.
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_, world_size=world,
                            timeout=TIMEOUT)
    try:
        out = fn(rank_, world, *args)
        queue.put((rank_, out))
        # Leave together: a rank tearing gloo down while its peer still has
        # a pending collective aborts the peer ("terminate called without an
        # active exception", seen under load in the full test suite).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int, args: tuple = ()) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes joined by gloo.

    ``fn`` and ``args`` must be picklable (module-level functions,
    ``functools.partial``, dataclasses); a script that calls this must guard
    its entry point with ``if __name__ == "__main__":`` (processes are
    spawned and re-import the main module). With ``world_size == 1`` ``fn``
    runs in this process without torch.distributed.

    Returns:
        The ranks' return values, in rank order.

    Raises:
        DistributedError: a rank failed (its traceback is in the message).
    """
    if world_size < 1:
        raise DistributedError(f"world_size must be ≥ 1, got {world_size}")
    if world_size == 1:
        return [fn(0, 1, *args)]
    import torch.multiprocessing as mp

    port = free_port()
    queue = mp.get_context("spawn").SimpleQueue()
    results: dict[int, Any] = {}
    spawned: list = []

    def on_signal(signum, frame):
        # Ctrl-C reaches every process of the terminal's group: the ranks see it themselves. A SIGTERM
        # (kill, a batch system) reaches this process only: pass it on. Either way this process keeps
        # the run folder's lock until the ranks have saved a checkpoint and stopped.
        if signum == signal.SIGTERM:
            for proc in (spawned[0].processes if spawned else ()):
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGTERM)
        logger.warning("interrupt received: waiting for the %d processes to save a checkpoint and stop", world_size)

    main = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        ctx = mp.spawn(_entry, args=(fn, world_size, port, queue, args), nprocs=world_size, join=False)
        spawned.append(ctx)
        try:
            while not ctx.join(timeout=0.2):
                while not queue.empty():  # drain as we go: a full pipe would block a rank
                    r, v = queue.get()
                    results[r] = v
        except mp.ProcessRaisedException as e:
            raise DistributedError(f"a training process failed:\n{e}") from None
        except mp.ProcessExitedException as e:
            raise DistributedError(f"a training process died ({e}); see the messages above") from None
        while not queue.empty():
            r, v = queue.get()
            results[r] = v
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    missing = [r for r in range(world_size) if r not in results]
    if missing:
        raise DistributedError(f"rank(s) {missing} returned no result")
    return [results[r] for r in range(world_size)]
