"""Torch data loading of sampled frame tuples from a prepared dataset.

:class:`TupleDataset` reads the frames (and whatever labels exist) of the
index tuples a sampler (:mod:`selfpose.data.samplers`) draws, straight from
the store's memory maps: no video decoding, nothing loaded up front, and the
records travel to worker processes without their maps (each worker opens its
own on first access).

Loading is *batch-level*: a :class:`BatchIndexSampler` in the main process
draws a whole :class:`~selfpose.data.samplers.IndexBatch` per step (seeded by
``(seed, epoch, step)``, so results do not depend on the number of workers),
and a worker reads it with one fancy-index per sequence. This is several
times faster than per-item ``__getitem__`` (one tuple at a time, then
collated), which :class:`TupleDataset` also supports for generic use.

A batch is a dict of tensors (``N`` tuples of ``K`` frames, ``H×W`` pixels):

==================  ======================  =========================================================
key                 shape, dtype            meaning
==================  ======================  =========================================================
frames              (N, K, 3, H, W) uint8   RGB; float32 in [0, 1] with ``as_float=True``
seq                 (N, K) int64            index of the frame's sequence in ``dataset.sequences``
index               (N, K) int64            stored frame index within the sequence
frame_ids           (N, K) int64            frame id within the take (shared by views)
subject             (N, K) int64            index into ``dataset.subjects()``
boxes               (N, K, 4) float32       x0, y0, x1, y1, pixels              (when stored)
joints2d            (N, K, J, 2) float32    pixels, house order, NaN = unknown  (when stored)
joints2d_conf       (N, K, J) float32       confidence in [0, 1]                (when stored)
joints3d            (N, K, J, 3) float32    camera frame, millimetres           (when stored)
camera_R/camera_t   (N, K, 3, 3)/(N, K, 3)  world→camera extrinsics, mm: per frame (moving camera)
                                            or the sequence's camera (static), when known
masks               (N, K, H, W) uint8      1 = person                          (when stored)
background          (N, K, 3, H, W) uint8   per-frame ``backgrounds`` or the static ``background``
true_background     (N, K, 3, H, W) uint8   the same for the synthetic ground truth
<extras>            (N, ...)                the sampler's extras (``delta``, ``sync``, ``flip``...)
==================  ======================  =========================================================
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from selfpose.data.samplers import IndexBatch, SamplerError
from selfpose.data.store import Dataset
from selfpose.errors import SelfposeError

#: Per-frame labels a batch can carry (temporal store arrays), besides frames.
FRAME_LABELS = ("frame_ids", "boxes", "joints2d", "joints2d_conf", "joints3d", "camera_R", "camera_t", "masks")
#: Image labels: output key → (per-frame store array, static store array).
IMAGE_LABELS = {"background": ("backgrounds", "background"),
                "true_background": ("true_backgrounds", "true_background")}
ALL_LABELS = FRAME_LABELS + tuple(IMAGE_LABELS)


class LoaderError(SelfposeError, ValueError):
    """The dataset and sampler cannot be loaded together (mixed frame sizes, missing labels...)."""


def _static_extrinsics(rec) -> bool:
    """The sequence has one known camera pose (synthetic or calibrated data), not per-frame arrays."""
    cam = getattr(rec.meta, "camera", None)
    # Identity R with zero t is the Camera default: extrinsics unknown, not a camera at the world origin.
    return cam is not None and (not np.allclose(cam.R, np.eye(3)) or bool(np.any(np.asarray(cam.t) != 0)))


def _has_label(rec, name: str) -> bool:
    if name in IMAGE_LABELS:
        return any(rec.has(a) for a in IMAGE_LABELS[name])
    if name in ("camera_R", "camera_t") and not rec.has(name):
        return _static_extrinsics(rec)
    return rec.has(name)


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 images (any shape) → float32 in [0, 1]; do it on the GPU to move 4× fewer bytes."""
    return frames.float().div_(255.0)


class TupleDataset(torch.utils.data.Dataset):
    """Frames and labels of sampled index tuples, read from a store's memory maps.

    Args:
        dataset: the opened store (:class:`~selfpose.data.store.Dataset`).
        sampler: a sampler built over the same ``dataset``.
        labels: ``"auto"`` (every label in :data:`ALL_LABELS` that all of the
            sampler's sequences have), or an explicit list (an error names
            the sequences lacking one).
        as_float: return frames/backgrounds as float32 in [0, 1] instead of
            uint8 (4× more bytes between processes; prefer :func:`to_float`
            on the device).
        length: ``len()`` for per-item use (tuples per epoch); defaults to
            the number of frames in the sampler's sequences.
        seed: per-item tuples are drawn from ``default_rng((seed, index))``.

    ``ds[i]`` (an int) gives one tuple (``(K, ...)`` arrays, to be collated by
    a DataLoader); ``ds[batch]`` (an :class:`IndexBatch`) gives a whole batch.
    """

    def __init__(self, dataset: Dataset, sampler, labels: str | Sequence[str] = "auto", as_float: bool = False,
                 length: int | None = None, seed: int = 0):
        self.records = list(dataset.sequences)
        ids = [r.meta.id for r in self.records]
        sampler_ids = [getattr(r, "meta", r).id for r in sampler.records]
        if ids != sampler_ids:
            raise LoaderError("the sampler was built over a different dataset (or selection) than the loader's; "
                              "build both from the same Dataset object")
        self.sampler, self.as_float, self.seed = sampler, bool(as_float), int(seed)
        active = [self.records[i] for i in np.asarray(sampler.active)]
        sizes = {(r.meta.height, r.meta.width) for r in active}
        if len(sizes) != 1:
            raise LoaderError(f"sequences have different frame sizes {sorted(sizes)}; a batch needs one size — "
                              "prepare the dataset at a single resolution or select sequences of one size")
        self.frame_hw = sizes.pop()
        if labels == "auto":
            self.labels = [n for n in ALL_LABELS if all(_has_label(r, n) for r in active)]
        else:
            unknown = [n for n in labels if n not in ALL_LABELS]
            if unknown:
                raise LoaderError(f"unknown label(s) {unknown}; known: {', '.join(ALL_LABELS)}")
            for n in labels:
                lacking = [r.meta.id for r in active if not _has_label(r, n)]
                if lacking:
                    raise LoaderError(f"label {n!r} is missing in {len(lacking)} sequence(s) "
                                      f"({', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}); "
                                      "drop it from `labels` or select sequences that have it")
            self.labels = list(labels)
        subjects = sorted({r.meta.subject for r in self.records})
        self.subject_index = np.array([subjects.index(r.meta.subject) for r in self.records], np.int64)
        self.length = int(length) if length is not None else int(sum(len(r) for r in active))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        if isinstance(key, IndexBatch):
            return self.load(key)
        rng = np.random.default_rng((self.seed, int(key)))
        item = self.load(self.sampler.sample(1, rng))
        return {k: v[0] for k, v in item.items()}

    # The hot path: one fancy-index read per (sequence, array) of the batch, written
    # straight into the output tensors (channels-first for images, in shared
    # memory inside a worker, so nothing is copied again on the way out).
    def load(self, batch: IndexBatch) -> dict[str, torch.Tensor]:
        """Read the frames and labels of ``batch`` into tensors (see the module table)."""
        N, K = batch.seq.shape
        H, W = self.frame_hw
        seq, idx = batch.seq.ravel(), batch.frames.ravel()
        order = np.argsort(seq, kind="stable")
        uniq, starts = np.unique(seq[order], return_index=True)
        groups = np.split(order, starts[1:])
        shared = torch.utils.data.get_worker_info() is not None
        out: dict[str, torch.Tensor] = {}

        def buffer(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
            """A numpy view of the (N·K, *shape) output tensor ``name``, allocated on first use."""
            if name not in out:
                out[name] = _empty((N * K, *shape), dtype, shared)
            return out[name].numpy()

        for s, g in zip(uniq, groups):
            rec = self.records[s]
            rows = idx[g]
            if rows.min() < 0 or rows.max() >= len(rec):
                raise LoaderError(f"sampled frame {rows.max()} outside sequence {rec.meta.id!r} "
                                  f"({len(rec)} frames); the store changed after the sampler was built?")
            buffer("frames", (3, H, W), np.uint8)[g] = rec["frames"][rows].transpose(0, 3, 1, 2)
            for name in self.labels:
                if name in IMAGE_LABELS:
                    per_frame, static = IMAGE_LABELS[name]
                    dst = buffer(name, (3, H, W), np.uint8)
                    if rec.has(per_frame):
                        dst[g] = rec[per_frame][rows].transpose(0, 3, 1, 2)
                    else:
                        dst[g] = rec[static].transpose(2, 0, 1)[None]
                elif name in ("camera_R", "camera_t") and not rec.has(name):
                    value = np.asarray(rec.meta.camera.R if name == "camera_R" else rec.meta.camera.t, np.float32)
                    buffer(name, value.shape, np.float32)[g] = value[None]
                else:
                    src = rec[name]
                    dst = buffer(name, src.shape[1:], src.dtype)
                    if dst.shape[1:] != src.shape[1:]:
                        raise LoaderError(f"{name} of {rec.meta.id!r} has shape {src.shape[1:]} per frame, "
                                          f"other sequences {dst.shape[1:]}; cannot batch them")
                    dst[g] = src[rows]
        result: dict[str, torch.Tensor] = {}
        for name, t in out.items():
            t = t.view(N, K, *t.shape[1:])
            if self.as_float and name in ("frames", *IMAGE_LABELS):
                t = to_float(t)
            result[name] = t
        result["seq"] = torch.from_numpy(batch.seq.astype(np.int64, copy=False))
        result["index"] = torch.from_numpy(batch.frames.astype(np.int64, copy=False))
        result["subject"] = torch.from_numpy(self.subject_index[batch.seq])
        for name, arr in batch.extras.items():
            result[name] = torch.from_numpy(np.ascontiguousarray(arr))
        return result


def _empty(shape: tuple[int, ...], dtype, shared: bool) -> torch.Tensor:
    """An uninitialised tensor; in shared memory when ``shared`` (what a worker sends back).

    Allocating in shared memory up front, as torch's own ``default_collate``
    does, saves the copy torch otherwise makes when a worker returns a tensor.
    """
    tdtype = torch.from_numpy(np.empty(0, dtype)).dtype
    if shared:
        try:
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            storage = torch.UntypedStorage._new_shared(nbytes)
            return torch.empty(0, dtype=tdtype).set_(storage).view(shape)
        except (AttributeError, RuntimeError):  # private API moved: fall back to a normal tensor
            pass
    return torch.empty(shape, dtype=tdtype)


class BatchIndexSampler(Sampler):
    """Yields ``num_batches`` :class:`IndexBatch` es of ``batch_size`` tuples per epoch.

    Runs in the main process. Batch ``b`` of epoch ``e`` is drawn from
    ``default_rng((seed, e, b))``: reproducible, independent of worker count,
    different every epoch (the epoch advances on each ``iter``; set it with
    :meth:`set_epoch` when resuming, with ``start`` to resume mid-epoch).
    """

    def __init__(self, sampler, batch_size: int, num_batches: int, seed: int = 0):
        if batch_size < 1 or num_batches < 1:
            raise SamplerError(f"batch_size and num_batches must be ≥ 1, got {batch_size}, {num_batches}")
        self.sampler, self.batch_size = sampler, int(batch_size)
        self.num_batches, self.seed = int(num_batches), int(seed)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The next ``iter`` yields batches ``start, …, num_batches − 1`` of ``epoch`` (exact resume)."""
        if not 0 <= start < self.num_batches:
            raise SamplerError(f"start must be in [0, {self.num_batches}), got {start}")
        self.epoch, self.start = int(epoch), int(start)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[IndexBatch]:
        epoch, start = self.epoch, self.start
        self.epoch, self.start = self.epoch + 1, 0
        for b in range(start, self.num_batches):
            yield self.sampler.sample(self.batch_size, np.random.default_rng((self.seed, epoch, b)))


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    Torch derives each worker's seed from the loader's generator (seeded by
    :func:`make_loader`), so augmentations using numpy/``random`` in workers
    differ between workers and are reproducible.
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset: Dataset, sampler, batch_size: int, num_workers: int = 0, seed: int = 0,
                num_batches: int | None = None, labels: str | Sequence[str] = "auto", as_float: bool = False,
                pin_memory: bool | None = None, prefetch_factor: int = 4) -> DataLoader:
    """A DataLoader of batches of sampled tuples (see the module docstring for the batch layout).

    Args:
        dataset: the opened store.
        sampler: a sampler built over ``dataset``.
        batch_size: tuples per batch (``N``).
        num_workers: loader processes (0 = load in the main process).
        seed: seeds the tuples (:class:`BatchIndexSampler`) and the workers.
        num_batches: batches per epoch; default: about one pass over the
            sampler's frames (frames / (batch_size × K)), at least 1.
        labels, as_float: see :class:`TupleDataset`.
        pin_memory: default: only when CUDA is available.
        prefetch_factor: batches each worker prepares ahead.
    """
    tds = TupleDataset(dataset, sampler, labels=labels, as_float=as_float, seed=seed)
    if num_batches is None:
        k = sampler.sample(1, 0).tuple_size
        num_batches = max(1, len(tds) // (batch_size * k))
    batches = BatchIndexSampler(sampler, batch_size, num_batches, seed)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    extra = {"persistent_workers": True, "prefetch_factor": prefetch_factor} if num_workers > 0 else {}
    return DataLoader(tds, batch_size=None, sampler=batches, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
                      worker_init_fn=seed_worker, generator=gen, **extra)
