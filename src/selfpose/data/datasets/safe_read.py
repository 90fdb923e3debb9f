"""Guarded reading of a source dataset's npz, pickle and JSON files.

A truncated download, a half-copied file or a file of another format makes
``numpy``, ``zipfile`` and ``pickle`` raise a zoo of exceptions
(``zipfile.BadZipFile``, ``zlib.error``, ``EOFError``, ``UnpicklingError``,
``ValueError``, ``IndexError``...). Every reader here turns them into one
user error that names the file and says what to do; the caller picks the
error class (``PrepareError`` for the preparers, :class:`InputFileError`
by default).

Files are read completely inside the guard (an npz member is decompressed and
unpickled when it is accessed, so a lazy reader would fail later, outside it).
"""

from __future__ import annotations

import json
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfpose.errors import InputFileError, SelfposeError

__all__ = ["CORRUPT_FILE_ERRORS", "npz_keys", "npz_object", "read_json", "read_npz", "read_pickle", "unreadable"]

#: What numpy/zipfile/pickle raise on a truncated or corrupt file. Unpickling
#: garbage can raise nearly anything (the pickle docs list AttributeError,
#: EOFError, ImportError and IndexError "among others"); these are the ones seen
#: on truncated and random bytes. MemoryError is left out on purpose.
CORRUPT_FILE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zlib.error, EOFError, ValueError, pickle.UnpicklingError, OSError,
    AttributeError, ImportError, IndexError, KeyError, TypeError, OverflowError,
)

ErrorClass = type[SelfposeError]


def unreadable(path: Path, e: BaseException, error: ErrorClass, what: str) -> SelfposeError:
    """The one-line error for an unreadable ``path``."""
    if isinstance(e, FileNotFoundError):
        return error(f"{path} not found; check the path")
    if isinstance(e, IsADirectoryError):
        return error(f"{path} is a folder, not {what}")
    if isinstance(e, ModuleNotFoundError):
        return error(f"{path} needs the Python module {e.name!r} to be read; convert it to .npz "
                     "(numpy arrays only) and pass that instead")
    if isinstance(e, PermissionError):
        return error(f"cannot read {path}: permission denied")
    detail = " ".join(f"{type(e).__name__}: {e}".split())
    return error(f"cannot read {path}: it is truncated, corrupt or not {what} ({detail}); "
                 "download or copy it again")


def read_npz(path: Path, required: Iterable[str] = (), error: ErrorClass = InputFileError,
             allow_pickle: bool = True) -> dict[str, Any]:
    """Every array of an ``.npz`` file, read completely.

    Args:
        path: the file.
        required: keys that must be present (else ``error`` lists what the file has).
        error: the error class raised.
        allow_pickle: allow object arrays (True for trusted dataset files such as
            VideoPose3D's and mmhuman3d's, which hold dicts).

    Raises:
        ``error`` naming the file when it is missing, truncated or corrupt.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=allow_pickle) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            data = {k: z[k] for k in z.files}
    except CORRUPT_FILE_ERRORS as e:
        raise unreadable(path, e, error, "an .npz archive") from e
    missing = [k for k in required if k not in data]
    if missing:
        raise error(f"{path} lacks key(s) {', '.join(missing)}; it has: {', '.join(data) or 'nothing'}")
    return data


def npz_keys(path: Path, error: ErrorClass = InputFileError) -> list[str]:
    """The array names of an ``.npz`` file (reads only its directory); ``error`` when it is not a readable npz."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            return list(z.files)
    except CORRUPT_FILE_ERRORS as e:
        raise unreadable(path, e, error, "an .npz archive") from e


def npz_object(data: dict[str, Any], key: str, path: Path, kind: type = dict,
               error: ErrorClass = InputFileError) -> Any:
    """The Python object (e.g. a dict) stored as a 0-d object array under ``key`` of an npz read by :func:`read_npz`."""
    arr = data[key]
    obj = arr.item() if isinstance(arr, np.ndarray) and arr.dtype == object and arr.ndim == 0 else arr
    if not isinstance(obj, kind):
        raise error(f"{path}: {key!r} must hold a {kind.__name__}, it holds "
                    f"{type(obj).__name__} {getattr(obj, 'shape', '')}; is this the right file?")
    return obj


def read_pickle(path: Path, error: ErrorClass = InputFileError) -> Any:
    """A pickle written by Python 2 or 3 (latin1 keeps Python 2 numpy arrays readable).

    Only for trusted dataset files (cameras.pkl...): unpickling runs code.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="latin1")
    except CORRUPT_FILE_ERRORS as e:
        raise unreadable(path, e, error, "a pickle file") from e


def read_json(path: Path, error: ErrorClass = InputFileError) -> Any:
    """A JSON file; ``error`` naming it when it is missing, truncated or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise unreadable(path, e, error, "a JSON file") from e
