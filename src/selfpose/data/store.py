"""The on-disk dataset: one ``index.json`` plus per-sequence ``.npy`` arrays.

Layout::

    DIR/index.json                      dataset attributes + every SequenceMeta
    DIR/sequences/<id>/frames.npy       (T, H, W, 3) uint8
    DIR/sequences/<id>/<array>.npy      see selfpose.data.sequence.ARRAY_SPECS

Why ``.npy`` files: they memory-map (``np.load(mmap_mode="r")``), so a data
loader worker reads a random frame with one page-cache lookup and no video
decoding, and many workers share the OS page cache instead of copies.

Writing streams: temporal arrays are appended chunk by chunk (a renderer or a
video decoder never holds a whole sequence), and the whole dataset is built in
a sibling ``DIR.partial-*`` folder that is renamed into place only when it is
complete. An interrupted write therefore leaves no folder that looks valid.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from selfpose.data.sequence import ARRAY_SPECS, SequenceMeta, check_array
from selfpose.errors import SelfposeError

FORMAT = "selfpose-dataset"
VERSION = 1
INDEX = "index.json"

# Fixed .npy header size so the shape can be rewritten in place when a
# streamed array is closed (numpy pads headers with spaces; 128 bytes holds
# any realistic shape).
_HEADER_LEN = 118  # 10 bytes of magic/version/length + 118 = 128, a multiple of 64


class DatasetError(SelfposeError, RuntimeError):
    """A dataset folder is missing, incomplete or inconsistent."""


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    text = repr(d).encode("latin1")
    if len(text) + 1 > _HEADER_LEN:
        raise ValueError(f"shape {shape} too long for a streamed .npy header")
    text = text + b" " * (_HEADER_LEN - len(text) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + np.uint16(_HEADER_LEN).tobytes() + text


class _StreamedArray:
    """An ``.npy`` file grown along axis 0 by appending chunks."""

    def __init__(self, path: Path, tail_shape: tuple[int, ...], dtype: str):
        self.path, self.tail_shape, self.dtype = path, tuple(tail_shape), np.dtype(dtype)
        self.length = 0
        self._fh = open(path, "wb")
        self._fh.write(_npy_header((0, *self.tail_shape), self.dtype))

    def append(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.shape[1:] != self.tail_shape:
            raise ValueError(f"{self.path.name}: chunk shape {chunk.shape} does not continue {self.tail_shape}")
        self._fh.write(chunk.tobytes())
        self.length += chunk.shape[0]

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.seek(0)
        self._fh.write(_npy_header((self.length, *self.tail_shape), self.dtype))
        self._fh.close()


class SequenceWriter:
    """Writes one sequence; get it from :meth:`DatasetWriter.add_sequence`.

    Temporal arrays are appended with :meth:`append` (any subset of them per
    call, in frame order); others are set once with :meth:`set`. ``meta.num_frames``
    is updated to the number of frames appended when the sequence is closed,
    so a streaming source need not know its length in advance. After
    :meth:`close`, the file at ``array_path("frames")`` is complete and can be read back
    (memory-mapped) to derive static arrays such as an estimated background,
    which :meth:`set` still accepts.
    """

    def __init__(self, root: Path, meta: SequenceMeta):
        self.meta = meta
        self.dir = root / "sequences" / meta.id
        self.dir.mkdir(parents=True, exist_ok=False)
        self._streams: dict[str, _StreamedArray] = {}
        self._static: set[str] = set()
        self.closed = False

    def append(self, **chunks: np.ndarray) -> None:
        for name, chunk in chunks.items():
            spec = ARRAY_SPECS.get(name)
            if spec is None or not spec.temporal:
                raise KeyError(f"{name!r} is not a temporal sequence array; temporal ones: "
                               f"{', '.join(k for k, s in ARRAY_SPECS.items() if s.temporal)}")
            chunk = check_array(name, chunk, self.meta, num_frames=len(chunk))
            if name not in self._streams:
                self._streams[name] = _StreamedArray(self.dir / f"{name}.npy", chunk.shape[1:], spec.dtype)
            self._streams[name].append(chunk)

    def set(self, **arrays: np.ndarray) -> None:
        for name, arr in arrays.items():
            spec = ARRAY_SPECS.get(name)
            if spec is None:
                raise KeyError(f"unknown sequence array {name!r}")
            if spec.temporal and not self.closed:
                # A whole temporal array at once: same as one append.
                self.append(**{name: arr})
                continue
            if spec.temporal and name in self._streams:
                raise RuntimeError(f"{self.meta.id}: temporal array {name!r} was already written")
            # Static arrays, and after close() whole temporal arrays of the closed
            # length (e.g. per-frame backgrounds estimated from the written frames).
            arr = check_array(name, arr, self.meta)
            np.save(self.dir / f"{name}.npy", arr)
            self._static.add(name)
            # Static arrays may be added after close(), e.g. a background
            # estimated from the frames just written (read back memory-mapped).
            if self.closed:
                self._update_arrays()

    def array_path(self, name: str) -> Path:
        """Where array ``name`` is written (complete once :meth:`close` returned)."""
        return self.dir / f"{name}.npy"

    def close(self) -> SequenceMeta:
        if self.closed:
            return self.meta
        for s in self._streams.values():
            s.close()
        lengths = {n: s.length for n, s in self._streams.items()}
        if "frames" in lengths:
            self.meta.num_frames = lengths["frames"]
        elif lengths:
            self.meta.num_frames = next(iter(lengths.values()))
        bad = {n: L for n, L in lengths.items() if L != self.meta.num_frames}
        if bad:
            raise DatasetError(f"{self.meta.id}: arrays have different lengths: {lengths}")
        if "frame_ids" not in lengths and self.meta.num_frames:
            # Every sequence has frame ids; default: stored frame i is take frame i.
            np.save(self.dir / "frame_ids.npy", np.arange(self.meta.num_frames, dtype=np.int64))
            self._static.add("frame_ids")
        self._lengths = lengths
        self.closed = True
        self._update_arrays()
        return self.meta

    def _update_arrays(self) -> None:
        self.meta.attrs["arrays"] = sorted(set(getattr(self, "_lengths", {})) | self._static)


class DatasetWriter:
    """Builds a dataset folder atomically (see :func:`selfpose.outputs.atomic_output`).

    Use as a context manager: on a clean exit the folder appears at ``path``
    (replacing, with ``overwrite``, an earlier *dataset* there — never a
    folder selfpose did not write); on an exception (or Ctrl-C) the partial
    folder is removed and ``path`` is left as it was. A full disk becomes a
    :class:`~selfpose.errors.DiskFullError` naming ``path``.

    Args:
        path: the dataset folder.
        attrs: dataset attributes (the writer's ``attrs`` may be updated until the end).
        overwrite: replace an existing dataset at ``path``.
        inputs: the command's input paths; ``path`` may not be, contain or lie in one.
        finish: called with the complete partial folder (index written) before it
            is swapped in, e.g. to pool backgrounds, so the swap stays the last step.
    """

    def __init__(self, path: str | os.PathLike, attrs: dict[str, Any] | None = None, overwrite: bool = False,
                 inputs=(), finish=None):
        from selfpose.outputs import check_output

        self.path = Path(path)
        self.overwrite, self.inputs, self.finish = overwrite, list(inputs), finish
        check_output(self.path, "dataset", overwrite=overwrite, inputs=self.inputs)  # fail before any work
        self.attrs = dict(attrs or {})
        self.tmp: Path | None = None
        self._sequences: list[SequenceWriter] = []
        self._ids: set[str] = set()

    def __enter__(self) -> "DatasetWriter":
        import contextlib

        from selfpose.outputs import atomic_output

        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_output(self.path, "dataset", overwrite=self.overwrite,
                                                           inputs=self.inputs))
        try:
            (self.tmp / "sequences").mkdir()
        except BaseException as e:
            if not self._stack.__exit__(type(e), e, e.__traceback__):
                raise
        return self

    def add_sequence(self, meta: SequenceMeta) -> SequenceWriter:
        if meta.id in self._ids:
            raise ValueError(f"duplicate sequence id {meta.id!r}")
        self._ids.add(meta.id)
        w = SequenceWriter(self.tmp, meta)
        self._sequences.append(w)
        return w

    def write_sequence(self, meta: SequenceMeta, **arrays: np.ndarray) -> SequenceMeta:
        """Write a whole in-memory sequence (for small data and tests)."""
        w = self.add_sequence(meta)
        w.set(**arrays)
        return w.close()

    def _complete(self) -> None:
        metas = [w.close() for w in self._sequences]
        index = {"format": FORMAT, "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "attrs": self.attrs, "sequences": [m.to_dict() for m in metas]}
        with open(self.tmp / INDEX, "w") as fh:
            json.dump(index, fh, indent=1)
        if self.finish is not None:
            self.finish(self.tmp)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self._complete()
            except BaseException as e:
                # the partial folder goes; ENOSPC becomes a DiskFullError naming the dataset
                if not self._stack.__exit__(type(e), e, e.__traceback__):
                    raise
                return False
        return bool(self._stack.__exit__(exc_type, exc, tb))


class SequenceRecord:
    """A stored sequence: its metadata and lazily memory-mapped arrays.

    Safe to send to data-loader worker processes: memory maps are not pickled,
    each process opens its own on first access.
    """

    def __init__(self, root: Path, meta: SequenceMeta):
        self.root, self.meta = root, meta
        self._maps: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"root": self.root, "meta": self.meta, "_maps": {}}

    def __repr__(self) -> str:
        m = self.meta
        return f"SequenceRecord({m.id!r}, subject={m.subject!r}, action={m.action!r}, view={m.view!r}, T={m.num_frames})"

    @property
    def id(self) -> str:
        return self.meta.id

    def __len__(self) -> int:
        return self.meta.num_frames

    @property
    def arrays(self) -> list[str]:
        return list(self.meta.attrs.get("arrays", []))

    def has(self, name: str) -> bool:
        return name in self.meta.attrs.get("arrays", ())

    def path(self, name: str) -> Path:
        return self.root / "sequences" / self.meta.id / f"{name}.npy"

    def __getitem__(self, name: str) -> np.ndarray:
        """The array ``name``, memory-mapped read-only (no copy)."""
        arr = self._maps.get(name)
        if arr is None:
            if not self.has(name):
                raise KeyError(f"sequence {self.meta.id!r} has no {name!r}; it has: {', '.join(self.arrays)}")
            try:
                arr = np.load(self.path(name), mmap_mode="r")
            except (OSError, ValueError) as e:
                raise DatasetError(f"cannot read {self.path(name)}: {e}") from e
            self._maps[name] = arr
        return arr

    def get(self, name: str) -> np.ndarray | None:
        return self[name] if self.has(name) else None


_SHAPE = re.compile(r"'shape':\s*\(([\d,\s]*)\)")
_DESCR = re.compile(r"'descr':\s*'([^']+)'")


@functools.lru_cache(maxsize=64)
def _itemsize(descr: str) -> int:
    return np.dtype(descr).itemsize


def _npy_shape(path: str | Path) -> tuple[tuple[int, ...], int, int]:
    """``(shape, bytes the file must hold, bytes it holds)`` of an ``.npy`` file, from its header only (no data read).

    The header is parsed with two regular expressions (numpy's parser,
    ``ast.literal_eval``, costs ~40 µs a file — most of opening a large
    dataset); anything unusual falls back to numpy's parser.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        magic = fh.read(12)
        if magic[:6] != b"\x93NUMPY" or len(magic) < 10:
            raise ValueError("not an .npy file")
        start = 10 if magic[6] == 1 else 12
        hlen = int.from_bytes(magic[8:start], "little")
        fh.seek(start)
        text = fh.read(hlen).decode("latin1")
        shape_m, descr_m = _SHAPE.search(text), _DESCR.search(text)
        if shape_m is None or descr_m is None:
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            return tuple(shape), fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, size
    shape = tuple(int(x) for x in shape_m.group(1).split(",") if x.strip())
    return shape, start + hlen + int(np.prod(shape, dtype=np.int64)) * _itemsize(descr_m.group(1)), size


def _check_arrays(s: SequenceRecord, redo: str) -> None:
    """Every array ``index.json`` lists for ``s`` exists, is complete and has its frame count.

    Reads the ``.npy`` headers only (a few hundred bytes per array), so
    opening a dataset stays cheap; without it a wrong count surfaces as an
    ``IndexError`` deep inside a loader.
    """
    m = s.meta
    folder = os.path.join(s.root, "sequences", m.id)   # plain strings: Path objects cost more than the reads
    for name in s.arrays:
        try:
            shape, need, size = _npy_shape(os.path.join(folder, name + ".npy"))
        except FileNotFoundError:
            raise DatasetError(f"sequence {m.id!r} of {s.root}: {name}.npy is missing though index.json lists it; "
                               f"{redo}") from None
        except (OSError, ValueError) as e:
            raise DatasetError(f"sequence {m.id!r} of {s.root}: cannot read {name}.npy "
                               f"({' '.join(str(e).split())}); {redo}") from e
        spec = ARRAY_SPECS.get(name)
        if spec is not None and spec.temporal and (not shape or shape[0] != m.num_frames):
            raise DatasetError(f"sequence {m.id!r} of {s.root}: {name}.npy has {shape[0] if shape else 0} frames "
                               f"but index.json says {m.num_frames}; {redo}")
        if size < need:
            raise DatasetError(f"sequence {m.id!r} of {s.root}: {name}.npy is truncated ({size} of {need} bytes); "
                               f"{redo}")


class Dataset:
    """A prepared dataset, opened read-only.

    >>> ds = Dataset.open("data/lab")          # doctest: +SKIP
    >>> seq = ds.sequences[0]; seq["frames"][10]  # one (H, W, 3) frame, no decoding
    """

    def __init__(self, root: Path, attrs: dict[str, Any], sequences: list[SequenceRecord], created: str = ""):
        self.root, self.attrs, self.sequences, self.created = root, attrs, sequences, created

    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = True) -> "Dataset":
        """Open the dataset at ``path``.

        ``verify`` checks that every array the index lists exists, is complete
        and has the sequence's frame count, from the ``.npy`` headers only (no
        data is read); a mismatch is a :class:`DatasetError` that names the
        sequence. ``selfpose info --check`` opens without it, to list every
        problem rather than stop at the first.
        """
        root = Path(path)
        if not root.exists():
            raise DatasetError(f"dataset {root} does not exist; create one with `selfpose synth` or `selfpose prepare`")
        if not (root / INDEX).is_file():
            raise DatasetError(f"{root} is not a selfpose dataset (no {INDEX}); it may be an interrupted write — "
                               "run `selfpose synth`/`prepare` again")
        redo = "prepare the dataset again (`selfpose synth`/`prepare` with --overwrite)"
        try:
            index = json.loads((root / INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise DatasetError(f"{root / INDEX} is corrupt ({' '.join(str(e).split())}); {redo}") from e
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise DatasetError(f"{root / INDEX} is not a {FORMAT} index")
        if not isinstance(index.get("version", 0), int) or index.get("version", 0) > VERSION:
            raise DatasetError(f"{root} was written by a newer selfpose (format version {index['version']})")
        entries = index.get("sequences")
        if not isinstance(entries, list) or not all(isinstance(d, dict) for d in entries):
            raise DatasetError(f"{root / INDEX} has no list of sequences; {redo}")
        seqs = []
        for i, d in enumerate(entries):
            try:
                meta = SequenceMeta.from_dict(d)
            except (TypeError, KeyError, ValueError) as e:
                raise DatasetError(f"{root / INDEX}: sequence entry {i} ({d.get('id', 'no id')!r}) is malformed "
                                   f"({' '.join(str(e).split())}); {redo}") from e
            seqs.append(SequenceRecord(root, meta))
        if verify:
            for s in seqs:
                _check_arrays(s, redo)
        return cls(root, index.get("attrs", {}), seqs, index.get("created", ""))

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[SequenceRecord]:
        return iter(self.sequences)

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, {len(self)} sequences, {self.num_frames} frames)"

    @property
    def num_frames(self) -> int:
        return sum(s.meta.num_frames for s in self.sequences)

    def subjects(self) -> list[str]:
        return sorted({s.meta.subject for s in self.sequences})

    def actions(self) -> list[str]:
        return sorted({s.meta.action for s in self.sequences})

    def views(self) -> list[str]:
        return sorted({s.meta.view for s in self.sequences})

    def sequence(self, seq_id: str) -> SequenceRecord:
        for s in self.sequences:
            if s.meta.id == seq_id:
                return s
        raise KeyError(f"no sequence {seq_id!r} in {self.root}")

    def select(self, subjects=None, actions=None, views=None) -> "Dataset":
        """A view of this dataset restricted to the given subjects/actions/views."""
        def keep(s: SequenceRecord) -> bool:
            m = s.meta
            return ((subjects is None or m.subject in subjects) and (actions is None or m.action in actions)
                    and (views is None or m.view in views))
        return Dataset(self.root, self.attrs, [s for s in self.sequences if keep(s)], self.created)

    def with_subjects(self, subjects) -> "Dataset":
        """:meth:`select` of ``subjects`` for a command's ``--subjects``: the whole dataset when none are given,
        a one-line :class:`DatasetError` naming the subjects it has when none match."""
        if not subjects:
            return self
        sel = self.select(subjects=set(subjects))
        if not len(sel):
            raise DatasetError(f"no sequence of {self.root} has subjects {list(subjects)}; it has {self.subjects()}")
        return sel

    def with_looks(self, looks: int | None) -> "Dataset":
        """Each subject's sequences of its first ``looks`` rendered identities (``attrs["identity"]``, in natural
        order: ``S1~0#0``, ``S1~1#0``, …, ``S1~10#0``); the whole dataset for None.

        The house renders give every mocap subject several looks (clothes, skin, hair); a label protocol that
        labels "one person" as a real dataset's subject is — one body in one outfit — keeps one look. Data that
        does not record identities (real footage) gets a one-line :class:`DatasetError`.
        """
        if looks is None:
            return self
        if looks < 1:
            raise DatasetError(f"looks per subject must be >= 1 (or None for all), got {looks}")
        missing = [s.meta.id for s in self.sequences if "identity" not in (s.meta.attrs or {})]
        if missing:
            raise DatasetError(f"{self.root}: sequence {missing[0]!r} records no rendered identity "
                               "(attrs.identity), so its looks cannot be told apart; leave looks per subject unset "
                               "for data that is not the house renders")

        def natural(name: str) -> list:   # "S1~10#0" after "S1~9#0"
            return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

        by_subject: dict[str, set[str]] = {}
        for s in self.sequences:
            by_subject.setdefault(s.meta.subject, set()).add(str(s.meta.attrs["identity"]))
        keep = {(subject, i) for subject, ids in by_subject.items() for i in sorted(ids, key=natural)[:looks]}
        return Dataset(self.root, self.attrs,
                       [s for s in self.sequences if (s.meta.subject, str(s.meta.attrs["identity"])) in keep],
                       self.created)

    def takes(self) -> dict[str, list[SequenceRecord]]:
        """Sequences grouped by take (the synchronised views of one recording)."""
        out: dict[str, list[SequenceRecord]] = {}
        for s in self.sequences:
            out.setdefault(s.meta.take, []).append(s)
        return out
