"""The training loop of every self-supervised method.

:func:`train` runs a :class:`~selfpose.methods.base.Method` on batches of
sampled tuples (:func:`selfpose.data.loader.make_loader`) for
``train.steps`` optimiser steps, and writes into the run folder: the
resolved config and the environment at start, scalars every ``log_every``
steps (``metrics.csv`` + TensorBoard), pictures every ``picture_every``
steps, checkpoints every ``checkpoint_every`` steps and at the end.

Why plain PyTorch + torch.distributed (gloo on CPU) and not Lightning:
(1) checkpoints must load without executing code — safetensors + JSON here,
while Lightning's are pickles; (2) exact resume needs control over the
sampler position and the RNG states; (3) the loop is a few hundred lines a
reader can follow; (4) one dependency fewer to keep compatible with this
torch build.

Exact resume: a step's batch depends only on ``(seed, rank, stage, step)``
(the loader's batch sampler is positioned at the step, see
:meth:`selfpose.data.loader.BatchIndexSampler.set_epoch`), the learning rate
is a pure function of the step (:func:`selfpose.training.toolkit.lr_at`), and a checkpoint stores the weights, the
optimiser state and the python/numpy/torch RNG states of every rank. So
12 steps straight and 6 steps + resume + 6 steps end with the same weights
(bitwise in fp32 with the same thread count).

Stages: with ``train.stage2_step`` the loader is rebuilt at that step with
``method.sampler_kind(2)`` and ``method.set_stage(2)`` is called (e.g.
dives: reconstruction + gravity first, then DSL).

Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and
raises :class:`TrainingInterrupted`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from selfpose.errors import SelfposeError, disk_full
from selfpose.training import distributed as D
from selfpose.training.checkpoint import (CHECKPOINTS, CheckpointError, checkpoint_name, checkpoints_dir,
                                          latest_checkpoint, list_checkpoints, load_checkpoint, rng_state,
                                          save_checkpoint, set_rng_state)
from selfpose.training.config import config_dict, config_diff, config_hash, save_config
from selfpose.training.logs import (ENVIRONMENT, LOG, METRICS, PICTURES, TB, MetricLogger, append_environment,
                                    environment, run_log)
from selfpose.training.device import resolve_device, to_device
from selfpose.training.precision import autocast, resolve_precision, to_channels_last
# lr_at and TrainingError are re-exported: callers import them from here too.
from selfpose.training.toolkit import Stepper, TrainingError, check_lr, lr_at, progress_text  # noqa: F401

logger = logging.getLogger(__name__)

CONFIG = "config.yaml"
RUN = "run.json"
#: Everything a run writes into its folder (removed by ``overwrite``).
RUN_ARTIFACTS = (CHECKPOINTS, METRICS, TB, PICTURES, CONFIG, ENVIRONMENT, LOG, RUN)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C/SIGTERM after saving a checkpoint (``step``, ``checkpoint``)."""

    def __init__(self, step: int, checkpoint: Path | None, out_dir: Path):
        self.step, self.checkpoint, self.out_dir = step, checkpoint, out_dir
        super().__init__(f"training interrupted at step {step}; checkpoint {checkpoint}; "
                         f"continue with resume (--resume) into {out_dir}")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run folder.
        step: completed steps (``train.steps`` unless interrupted).
        checkpoint: the last checkpoint folder.
        metrics: the last logged scalars (window means, averaged over ranks).
        seconds: wall time of this launch's steps.
        resumed_from: step of the checkpoint resumed from (None: fresh start).
        precision: the precision used (``fp32``/``bf16``).
        interrupted: stopped by a signal (``train`` raises instead of returning it).
        weights_digest: sha256 of the final weights (every rank's must agree).
    """

    out_dir: Path
    step: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: int | None = None
    precision: str = "fp32"
    interrupted: bool = False
    weights_digest: str = ""


# --- small pure helpers ----------------------------------------------------------

def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers (well mixed: ``(1, 0)`` and ``(0, 1)`` differ)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _StopRequest:
    """First SIGINT/SIGTERM: ask the loop to stop after the step; second: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("%s received: finishing this step, saving a checkpoint, then stopping "
                       "(press Ctrl-C again to stop at once)", signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _quiet_worker(init: Callable[[int], None] | None, worker_id: int) -> None:
    """Data-loader workers ignore Ctrl-C/SIGTERM: the training process stops them itself after
    saving a checkpoint (a worker killed by the terminal's Ctrl-C would break the batch in flight)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if init is not None:
        init(worker_id)


def _write_run(out_dir: Path, **status: Any) -> None:
    tmp = out_dir / f".{RUN}.tmp"
    tmp.write_text(json.dumps(status, indent=1))
    tmp.replace(out_dir / RUN)


def _describe_run(out_dir: Path) -> str:
    """'a finished run (step 40 of 40)'...; a run whose run.json says running while nobody holds its lock was killed."""
    from selfpose.outputs import lock_holder

    p = out_dir / RUN
    try:
        st = json.loads(p.read_text())
        status = st["status"]
        holder = lock_holder(out_dir)
        if status == "running" and (holder is None or holder.get("pid") == os.getpid()):
            status = "interrupted"   # its process died (killed, power cut) without saying so
        return f"a{'n' if status[:1] in 'aeiou' else ''} {status} run (step {st['step']} of {st['steps']})"
    except (OSError, ValueError, KeyError, TypeError):
        found = list_checkpoints(out_dir)
        return f"a run (last checkpoint at step {found[-1][0]})" if found else "run files"


def prepare_out_dir(out_dir: str | os.PathLike, resume: bool, overwrite: bool, inputs=()) -> Path:
    """Create the run folder, or check that an existing one may be used.

    ``overwrite`` deletes only what a run writes (:data:`RUN_ARTIFACTS`), and only
    in a folder that holds nothing else (selfpose outputs inside it, such as a
    pose folder or an analysis, are kept); ``inputs`` (the dataset folder) may be
    neither the run folder nor inside it. Call it holding the folder's lock
    (:func:`train` does).

    Raises:
        TrainingError: it holds a run and neither ``resume`` nor ``overwrite`` is set.
        OutputError: ``overwrite`` of a folder holding files selfpose did not write, or of an input.
    """
    from selfpose.outputs import check_inputs, check_replaceable, read_marker, write_marker

    out_dir = Path(out_dir)
    if resume and overwrite:
        raise TrainingError("choose either resume (continue the run) or overwrite (start over), not both")
    existing = [a for a in RUN_ARTIFACTS if (out_dir / a).exists()]
    if existing and not resume:
        if not overwrite:
            raise TrainingError(f"{out_dir} already holds {_describe_run(out_dir)}; pass --resume to continue it, "
                                "--overwrite to start over, or choose another output folder")
        check_inputs(out_dir, inputs, replacing=True)
        check_replaceable(out_dir.resolve(), "run", nested_outputs_ok=True)
        for a in existing:
            p = out_dir / a
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if read_marker(out_dir) is None:
        write_marker(out_dir, "run", entries=())
    return out_dir


def _dataset_fingerprint(ds) -> dict:
    """Where the dataset is and a cheap fingerprint of it (sha256 of its index.json), for run.json."""
    import hashlib

    from selfpose.data.store import INDEX

    root = Path(ds.root)
    try:
        digest = hashlib.sha256((root / INDEX).read_bytes()).hexdigest()[:16]
    except OSError:
        digest = None
    return {"path": str(root.resolve()), "index_sha256": digest}


class _TerminalWarnings:
    """While active, warnings of ``selfpose`` loggers also reach the terminal (stderr), not only log.txt.

    Resuming with a changed config or on another dataset, or from an older
    checkpoint because the newest is broken, changes what the user gets: it
    must be seen. Nothing is added when a stderr handler is already there.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.handler: logging.Handler | None = None

    def __enter__(self) -> "_TerminalWarnings":
        if not self.enabled:
            return self
        log = logging.getLogger("selfpose")
        streams = [h for lg in (log, logging.getLogger()) for h in lg.handlers
                   if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
        if not streams:
            self.handler = logging.StreamHandler(sys.stderr)
            self.handler.setLevel(logging.WARNING)
            self.handler.setFormatter(logging.Formatter("warning: %(message)s"))
            log.addHandler(self.handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.handler is not None:
            logging.getLogger("selfpose").removeHandler(self.handler)


# --- the loop ---------------------------------------------------------------------

def train(method_factory: Callable[[], Any], data, sampler_factory: Callable[[str, Any], Any], cfg,
          out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> TrainResult:
    """Train a method; see the module docstring.

    Args:
        method_factory: ``() -> Method``, called once per process after seeding
            with ``train.seed`` (so every rank starts from the same weights).
            Must be picklable when ``train.processes > 1`` (a class, a
            module-level function or a ``functools.partial``).
        data: the prepared dataset (:class:`~selfpose.data.store.Dataset` or its folder).
        sampler_factory: ``(kind, dataset) -> sampler`` for the kind returned by
            ``method.sampler_kind(stage)``; picklable as above.
        cfg: a config dataclass with ``optim`` (:class:`OptimConfig`) and
            ``train`` (:class:`TrainConfig`) sections; saved whole as ``config.yaml``.
        out_dir: the run folder.
        resume: continue from the newest valid checkpoint in ``out_dir``
            (falling back to older ones, with a warning, when it is broken;
            starting at step 0 when there is none).
        overwrite: delete a previous run's files in ``out_dir`` first.
        progress: show a progress bar (``SELFPOSE_PROGRESS=0`` also hides it).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingError: ``out_dir`` holds a run and neither flag is set; a non-finite learning rate,
            loss, gradient norm or weights (the checkpoints saved so far stay as they are).
        CheckpointError: resuming from checkpoints that are all broken or do not fit the model.
        TrainingInterrupted: stopped by Ctrl-C/SIGTERM (after saving a checkpoint).
    """
    from selfpose.outputs import inplace_output

    data = _open_data(data)  # fail here, with the store's own message, rather than in every process
    if resume and overwrite:
        raise TrainingError("choose either resume (continue the run) or overwrite (start over), not both")
    # A GPU that is not there: one line, before the run folder.
    if resolve_device(cfg.train.device, "train.device").type == "cuda" and cfg.train.processes > 1:
        from selfpose.config import ConfigError

        raise ConfigError(f"train.device={cfg.train.device} is a GPU here: train it with processes: 1 "
                          f"(train.processes={cfg.train.processes} is CPU data-parallel training)")
    # The run folder is locked for the whole run (the spawned ranks of processes>1 work under the
    # parent's lock); a second writer gets an OutputError naming this process.
    with inplace_output(out_dir, "run", inputs=[data.root]):
        out_dir = prepare_out_dir(out_dir, resume, overwrite, inputs=[data.root])
        args = (method_factory, data, sampler_factory, cfg, out_dir, resume, progress)
        try:
            results = D.launch(_run, cfg.train.processes, args)
        except OSError as e:
            raise disk_full(e, out_dir) or e
    result = results[0]
    if len({r.weights_digest for r in results}) > 1:
        raise D.DistributedError("the processes ended with different weights (replicas diverged); "
                                 "report this with the run's log")
    if result.interrupted:
        raise TrainingInterrupted(result.step, result.checkpoint, out_dir)
    return result


def _open_data(data):
    from selfpose.data.store import Dataset

    return Dataset.open(data) if isinstance(data, (str, os.PathLike)) else data


def _run(rank: int, world: int, method_factory, data, sampler_factory, cfg, out_dir: Path, resume: bool,
         progress: bool) -> TrainResult:
    """One process's training (rank 0 of 1 without torch.distributed)."""
    tc = cfg.train
    is_main = rank == 0
    old_threads = torch.get_num_threads()
    torch.set_num_threads(tc.threads or max(1, (os.cpu_count() or 1) // world))
    # A spawned rank has no logging set up: rank 0 also prints to stderr there.
    to_stderr = world > 1 and not logging.getLogger().handlers
    try:
        # The stop request covers set-up and tear-down too: a Ctrl-C then is not a traceback.
        with _StopRequest() as stop, run_log(out_dir, enabled=is_main, to_stderr=to_stderr), \
                _TerminalWarnings(enabled=is_main):
            return _Trainer(rank, world, method_factory, data, sampler_factory, cfg, out_dir, resume,
                            progress).run(stop)
    finally:
        torch.set_num_threads(old_threads)


class _Trainer:
    """State of one process's run; :meth:`run` is the loop."""

    def __init__(self, rank, world, method_factory, data, sampler_factory, cfg, out_dir, resume, progress):
        from selfpose.methods.base import Method

        self.rank, self.world, self.is_main = rank, world, rank == 0
        self.cfg, self.tc, self.out_dir = cfg, cfg.train, Path(out_dir)
        self.progress = progress
        self.ds = _open_data(data)
        self.sampler_factory = sampler_factory
        self.device = resolve_device(self.tc.device, "train.device")
        self.precision = resolve_precision(self.tc.precision, self.device.type)
        self.hash = config_hash(cfg)

        seed_all(self.tc.seed)  # identical initial weights on every rank
        method = method_factory()
        if not isinstance(method, Method):
            raise TrainingError(f"method_factory returned a {type(method).__name__}, not a selfpose Method")
        method.to(self.device)   # before the optimiser is built, so that its state lives there too
        if self.tc.channels_last:
            to_channels_last(method)
        self.method = method
        check_lr(cfg.optim)  # before the optimiser: torch's own check would be a ValueError traceback
        self.optimizer = method.configure_optimizer(cfg.optim)
        # The shared step (selfpose.training.toolkit): schedule, finiteness checks, clipping.
        self.stepper = Stepper(self.optimizer, cfg.optim, self.tc.steps,
                               [p for p in method.parameters() if p.requires_grad],
                               hint=f"the checkpoints in {self.out_dir} are untouched: after the fix, continue "
                                    "from the last one with --resume (or start again with --overwrite if there "
                                    "is none yet)")
        # Per-rank randomness of the steps (augmentation, dropout, permutations).
        seed_all(derive_seed(self.tc.seed, rank, 1))
        self.step, self.resumed_from, self.elapsed_before = 0, None, 0.0
        self.last_checkpoint: Path | None = None
        self.data_info = _dataset_fingerprint(self.ds) if self.is_main else {}
        if resume:
            self._resume()
        if self.is_main:
            self._write_setup()
        self.model = D.wrap_ddp(method, find_unused_parameters=method.unused_parameters)
        D.barrier()

    # -- start -------------------------------------------------------------------
    def _check_same_data(self) -> None:
        """Warn (on the terminal) when the run resumes on another dataset than it started on."""
        try:
            before = json.loads((self.out_dir / RUN).read_text()).get("data") or {}
        except (OSError, ValueError, AttributeError):
            return
        now = self.data_info
        if before.get("index_sha256") and now.get("index_sha256") and before["index_sha256"] != now["index_sha256"]:
            logger.warning("resuming on a different dataset: the run started on %s (index %s), now %s (index %s); "
                           "the remaining steps train on the new data", before.get("path"), before["index_sha256"],
                           now["path"], now["index_sha256"])
        elif before.get("path") and before["path"] != now.get("path"):
            logger.info("resuming with the dataset at %s (it was at %s; same index)", now.get("path"), before["path"])

    def _resume(self) -> None:
        if self.is_main:
            self._check_same_data()
        ck = latest_checkpoint(self.out_dir)  # warns and falls back when the newest is broken
        if ck is None:
            if self.is_main:
                logger.warning("resume: no checkpoint in %s; starting from step 0", self.out_dir)
            return
        model_sd, opt_sd, ck = load_checkpoint(ck)
        try:
            self.method.load_state_dict(model_sd)
            self.optimizer.load_state_dict(opt_sd)
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"checkpoint {ck.path} does not fit this method ({first}); resume with the "
                                  f"config it was trained with ({self.out_dir / CONFIG}) or start over with "
                                  "--overwrite") from None
        rngs = ck.state["rng"]
        if len(rngs) == self.world:
            set_rng_state(rngs[self.rank])
        else:
            if self.is_main:
                logger.warning("checkpoint saved by %d process(es), resuming with %d: the randomness of the "
                               "remaining steps differs from an uninterrupted run", len(rngs), self.world)
            seed_all(derive_seed(self.tc.seed, self.rank, 1, ck.step))
        self.step, self.resumed_from = ck.step, ck.step
        self.elapsed_before = float(ck.state["elapsed_s"])
        self.last_checkpoint = ck.path
        if self.is_main:
            logger.info("resuming from %s (step %d of %d)", ck.path, ck.step, self.tc.steps)
            if ck.state["config_hash"] != self.hash and (self.out_dir / CONFIG).is_file():
                from selfpose.config import ConfigError, read_mapping

                try:   # only for the warning: the checkpoint, not this file, is what resumes
                    old = read_mapping(self.out_dir / CONFIG)
                except ConfigError as e:
                    logger.warning("the run's old config cannot be compared (%s); it is replaced by the current one", e)
                    old = {}
                from selfpose.pretrain import upgrade_config_dict   # runs saved before method_config existed

                changes = config_diff(upgrade_config_dict(old), config_dict(self.cfg)) if old else ["(unreadable)"]
                if changes:
                    logger.warning("resuming with a changed config: %s", "; ".join(changes))
                else:   # same settings in a newer layout (e.g. drnet → method_config.drnet): nothing to warn about
                    logger.info("resuming: the run's config was saved in an older layout; settings unchanged")

    def _write_setup(self) -> None:
        save_config(self.cfg, self.out_dir / CONFIG)
        append_environment(self.out_dir, environment({
            "processes": self.world, "device": str(self.device), "precision": self.precision,
            "channels_last": self.tc.channels_last,
            **({"gpu": torch.cuda.get_device_name(self.device)} if self.device.type == "cuda" else {}),
            "resumed_from": self.resumed_from, "config_hash": self.hash}))
        self._status("running")

    def _status(self, status: str, **extra: Any) -> None:
        if self.is_main:
            _write_run(self.out_dir, status=status, step=self.step, steps=self.tc.steps,
                       config_hash=self.hash, data=self.data_info, **extra)

    # -- data --------------------------------------------------------------------
    def _start_stage(self, stage: int):
        """Build the loader of ``stage``, positioned at the current step; returns its iterator."""
        from selfpose.data.loader import make_loader

        tc = self.tc
        self.stage = stage
        self.method.set_stage(stage)
        kind = self.method.sampler_kind(stage)
        sampler = self.sampler_factory(kind, self.ds)
        first, end = tc.stage_bounds(stage)
        self.stage_first = first
        self.loader_seed = derive_seed(tc.seed, self.rank)  # each rank draws different tuples
        self.loader = make_loader(self.ds, sampler, tc.batch_size, num_workers=tc.num_workers, seed=self.loader_seed,
                                  num_batches=end - first, labels=self.method.batch_labels(stage),
                                  pin_memory=self.device.type == "cuda")   # page-locked only where a GPU copies
        self.loader.sampler.set_epoch(stage, start=self.step - first)
        self.loader.worker_init_fn = functools.partial(_quiet_worker, self.loader.worker_init_fn)
        if tc.num_workers and self.world > 1 and sys.platform.startswith("linux"):
            # A spawned rank would spawn its loader workers too (seconds of imports each, and a
            # window in which Ctrl-C kills them); forking them is what torchrun-launched ranks do.
            self.loader.multiprocessing_context = "fork"
        # A fixed batch for the pictures, so that successive pictures are comparable.
        pic = sampler.sample(tc.pictures, np.random.default_rng((tc.seed, stage, 7)))
        self.picture_batch = self.loader.dataset.load(pic) if self.is_main else None
        self.sampler_kind = kind
        if self.is_main and (stage > 1 or self.step > 0):
            logger.info("stage %d from step %d: sampler %r", stage, self.step, kind)
        return iter(self.loader)

    # -- periodic work ---------------------------------------------------------------
    def _save(self) -> Path:
        # Never save diverged weights over good ones (every rank holds the same weights: all raise together).
        self.stepper.check_weights(self.method, self.step)
        rngs = D.gather_objects(rng_state())
        path = checkpoints_dir(self.out_dir) / checkpoint_name(self.step)
        if self.is_main:
            state = {"config_hash": self.hash, "world_size": self.world, "rng": rngs,
                     "elapsed_s": self.elapsed(),
                     "sampler": {"stage": self.stage, "kind": self.sampler_kind, "seed": self.tc.seed,
                                 "epoch": self.stage, "position": self.step - self.stage_first}}
            try:
                path = save_checkpoint(self.out_dir, self.step, self.method.state_dict(),
                                       self.optimizer.state_dict(), state, keep=self.tc.keep_checkpoints)
            except OSError as e:  # the half-written checkpoint is already gone; earlier ones are kept
                raise disk_full(e, checkpoints_dir(self.out_dir)) or e
            self._status("running", checkpoint=path.name)
        D.barrier()  # no rank runs ahead (or exits) while the checkpoint is written
        self.last_checkpoint = path
        return path

    def _pictures(self, logs: MetricLogger) -> None:
        """Picture log of the fixed batch; does not touch the training RNG streams."""
        if not self.is_main:
            return
        saved = rng_state()
        was_training = self.method.training
        self.method.eval()
        try:
            with torch.no_grad(), autocast(self.precision, self.device.type):
                images = self.method.pictures(to_device(self.picture_batch, self.device))
            logs.pictures(self.step, images)
        except SelfposeError:
            raise   # a user error (e.g. the disk is full) ends the run with its one-line message
        except OSError as e:
            from selfpose.errors import disk_full

            if (full := disk_full(e, self.out_dir)) is not None:
                raise full from e
            logger.exception("picture log failed at step %d (training continues)", self.step)
        except Exception:  # any other failure of a diagnostic picture must not end a long run; say so loudly
            logger.exception("picture log failed at step %d (training continues)", self.step)
        finally:
            self.method.train(was_training)
            set_rng_state(saved)

    def elapsed(self) -> float:
        return self.elapsed_before + self.seconds

    # -- the loop ------------------------------------------------------------------
    def run(self, stop: _StopRequest) -> TrainResult:
        from selfpose.utils.progress import progress_bar

        tc, method = self.tc, self.method
        self.seconds = 0.0
        result = TrainResult(self.out_dir, self.step, self.last_checkpoint, resumed_from=self.resumed_from,
                             precision=self.precision)
        if self.step >= tc.steps:
            if self.is_main:
                logger.info("the run in %s already has %d/%d steps; nothing to do", self.out_dir, self.step, tc.steps)
            return result
        logs = MetricLogger(self.out_dir, enabled=self.is_main, resume_step=self.step)
        window: dict[str, list[float]] = {}
        last: dict[str, float] = {}
        saved_at = self.step if self.resumed_from is not None else None
        stage, it = None, None
        bar_on = None if (self.progress and self.is_main) else False
        try:
            with progress_bar(bar_on) as bar:
                task = bar.add_task("train", total=tc.steps, completed=self.step)
                method.train()
                while self.step < tc.steps:
                    if tc.stage_at(self.step) != stage:
                        it = None  # shut the previous loader's workers down first
                        stage = tc.stage_at(self.step)
                        it = self._start_stage(stage)
                    t0 = time.perf_counter()
                    batch = to_device(next(it), self.device)
                    t_data = time.perf_counter() - t0
                    lr = self.stepper.set_lr(self.step)
                    with autocast(self.precision, self.device.type):
                        try:
                            loss, values = self.model(batch, self.step)
                        except RuntimeError as e:
                            if "find_unused_parameters" not in str(e):
                                # Diverged weights make the forward fail deep inside (e.g. a BCE on NaN):
                                # say so, rather than show torch's error.
                                self.stepper.check_weights(method, self.step)
                                raise
                            raise TrainingError(f"{type(method).__name__} leaves trainable parameters without "
                                                "gradient; set `unused_parameters = True` on the method class "
                                                "for multi-process training") from e
                    loss = loss.float()
                    extra = self.stepper.step(loss, self.step, values)
                    self.step += 1
                    dt = time.perf_counter() - t0
                    self.seconds += dt
                    row = {"loss": float(loss.detach()), **{k: float(v) for k, v in values.items()}, **extra,
                           "sec_per_step": dt, "data_sec": t_data}
                    for k, v in row.items():
                        window.setdefault(k, []).append(v)
                    bar.update(task, advance=1, description=progress_text("train", row["loss"], dt))

                    if self.step % tc.log_every == 0 or self.step == tc.steps:
                        means = {k: float(np.mean(v)) for k, v in window.items()}
                        last = D.mean_dicts(D.gather_objects(means))
                        last = {"lr": lr, **last}  # the schedule's lr
                        logs.scalars(self.step, last, self.elapsed())
                        window = {}
                    if self.step == tc.steps or (tc.picture_every and self.step % tc.picture_every == 0):
                        self._pictures(logs)
                    stopping = D.any_true(stop.requested)
                    if self.step % tc.checkpoint_every == 0 or self.step == tc.steps or stopping:
                        if saved_at != self.step:
                            self._save()
                            saved_at = self.step
                        logs.flush()
                    if stopping:
                        result.interrupted = True
                        break
        except BaseException as e:
            with contextlib.suppress(OSError):  # a full disk must not hide the error being reported
                self._status("interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                             error=f"{type(e).__name__}: {e}"[:500])
            raise
        finally:
            it = None
            self.loader = None
            logs.close()
        result.step, result.checkpoint = self.step, self.last_checkpoint
        result.weights_digest = D.params_digest(method)
        result.metrics, result.seconds = last, self.seconds
        self._status("interrupted" if result.interrupted else "finished",
                     checkpoint=self.last_checkpoint.name if self.last_checkpoint else None)
        if self.is_main:
            logger.info("%s at step %d/%d (%.1f s, %.3f s/step); checkpoint %s",
                        "interrupted" if result.interrupted else "finished", self.step, tc.steps, self.seconds,
                        self.seconds / max(1, self.step - (self.resumed_from or 0)), self.last_checkpoint)
        return result
