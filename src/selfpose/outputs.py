"""Output folders that a command can prove it made, replaced atomically, written by one process at a time.

Every folder a command writes (a dataset store, a pretraining run, a pose
folder, a benchmark or demo work folder) carries a *marker file*,
``.selfpose-output.json``::

    {"kind": "dataset", "created": "2026-12-01T18:00:00", "selfpose": "0.4.0", "entries": [...]}

``kind`` is a plain string: a new kind of output (say a 2D→3D ``lifter`` run)
passes its own name, and :func:`register_kind` (optional) tells which
top-level names it writes. ``entries`` lists what the command put there.

Rules (why: ``--overwrite`` used to delete whatever was at ``--out``, a
user's own files, the run being fitted or the dataset being read):

* ``--overwrite`` replaces a folder only when it carries a marker of the
  *same* kind (or, for outputs written before markers existed, has the
  kind's known layout: a store has ``index.json`` + ``sequences/``, a run
  ``config.yaml`` + ``checkpoints/``, a pose folder ``pose.json``) and holds
  nothing else. Anything else is an :class:`~selfpose.errors.OutputError`.
* An output is never its command's input, inside it, nor around it
  (paths compared resolved).
* :func:`atomic_output` builds the new output in a hidden sibling
  ``.NAME.partial-<pid>-<rand>`` and swaps it in only on success: a failing
  command leaves the previous output as it was. Partial folders left by a
  killed process (its pid recorded in the name and in the folder) are removed
  by the next writer of the same output, once that pid is dead; nothing else
  is ever deleted.
* Every writer holds an OS lock (``fcntl.flock``) for as long as it writes:
  a second writer gets an error naming the holder's pid. The kernel drops the
  lock when its holder dies, so a killed run never blocks its resume.
  In-place outputs (runs, work folders) lock ``FOLDER/.selfpose.lock``;
  atomically replaced ones lock a sibling ``.NAME.lock`` (the folder itself
  is swapped, and may not exist yet).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from selfpose.errors import OutputError, disk_full

logger = logging.getLogger(__name__)

MARKER = ".selfpose-output.json"
LOCK = ".selfpose.lock"
#: Written into a partial folder: who builds it (pid, host), for the clean-up of killed writes.
PARTIAL_INFO = ".selfpose-partial.json"


@dataclass(frozen=True)
class Kind:
    """What an output kind may hold.

    Attributes:
        entries: ``fnmatch`` patterns of the top-level names the kind writes
            (its own later writers included, e.g. ``evaluate``'s results in a pose folder).
        legacy: sets of names whose joint presence identifies an output of this
            kind written before markers existed.
    """

    entries: tuple[str, ...] = ()
    legacy: tuple[tuple[str, ...], ...] = ()


# (the *.tmp files: what a run killed while it replaced one of its files leaves behind; analysis/ and pretext/:
# what `analyze RUN` and `evaluate RUN` of a sync run write by default)
_RUN_ENTRIES = ("checkpoints", "metrics.csv", "tb", "pictures", "config.yaml", "environment.yaml", "log.txt",
                "run.json", ".run.json.tmp", "metrics.csv.tmp", "config.yaml.tmp", "environment.yaml.tmp",
                "analysis", "pretext")
KINDS: dict[str, Kind] = {
    # bench_synth.json: the benchmark's note of the settings it rendered a dataset with
    "dataset": Kind(("index.json", "sequences", "bench_synth.json"), (("index.json", "sequences"),)),
    "run": Kind(_RUN_ENTRIES, (("config.yaml", "checkpoints"), ("config.yaml", "run.json"))),
    # pose_head/ (the fitted head), encoder/ (its pinned weights), analysis/ (analyze POSE), evaluate's results
    "pose": Kind(("pose.json", "pose_head", "pose_head.*", "encoder", "results.json", "results.md", "analysis"),
                 (("pose.json",),)),
    # a 2D→3D lifter run (fit-lifter): weights, config, validation curve, evaluate's results
    "lifter": Kind(("lifter.json", "lifter.safetensors", "metrics.csv", "results.json", "results.md", "skeletons.png",
                    "config.yaml", "checkpoints"),
                   (("lifter.json", "lifter.safetensors"),)),
    # the image path's 2D network (fit-lifter on an image dataset)
    "heatmap2d": Kind(("heatmap2d.json", "heatmap2d.safetensors", "metrics.csv"), (("heatmap2d.json",),)),
    # selfpose keypoints: one keypoint file per video (and the temporary names of one being written)
    "keypoints": Kind(("*.npz", "summary.json", ".*.partial-*.npz", ".summary.partial.json")),
    "benchmark": Kind(("data", "runs", "pose", "cells", "analysis", "results.json", "results.md", "cells.csv",
                       "*.png", "log.txt", "gpu.txt", "timings.txt", "render_*.log", "pretext.json", "pretext.md"),
                      (("cells",),)),   # gpu/timings: gpu_run.sh; render logs, pretext: sync_transfer_gpu.sh
    "demo": Kind(("data", "run", "pose", "random_init", "pose_random", "analysis", "results.json", "report.md",
                  "report.html", "*.png"), (("report.md", "results.json"), ("data", "run"))),
}


def register_kind(name: str, entries: Iterable[str] = (), legacy: Iterable[Iterable[str]] = ()) -> None:
    """Declare what outputs of kind ``name`` hold (not needed for kinds whose marker lists everything)."""
    KINDS[name] = Kind(tuple(entries), tuple(tuple(x) for x in legacy))


# --- the marker ------------------------------------------------------------------

def read_marker(folder: str | os.PathLike) -> dict | None:
    """The folder's marker, or None when it has none (or an unreadable one)."""
    try:
        d = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and isinstance(d.get("kind"), str) else None


def write_marker(folder: str | os.PathLike, kind: str, entries: Iterable[str] | None = None) -> None:
    """Mark ``folder`` as an output of ``kind``; ``entries``: its top-level names (default: what it holds now)."""
    import selfpose

    folder = Path(folder)
    if entries is None:
        entries = [p.name for p in folder.iterdir() if p.name not in (MARKER, LOCK, PARTIAL_INFO)]
    doc = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "selfpose": selfpose.__version__,
           "entries": sorted(entries)}
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, folder / MARKER)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in (MARKER, LOCK, f"{MARKER}.tmp"))


def _allowed(name: str, kind: str, marker: dict | None, extra: Iterable[str]) -> bool:
    patterns = (*KINDS.get(kind, Kind()).entries, *extra, *((marker or {}).get("entries") or ()))
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def output_kind(folder: str | os.PathLike) -> str | None:
    """The kind of selfpose output ``folder`` is (its marker, else a known pre-marker layout), or None."""
    folder = Path(folder)
    m = read_marker(folder)
    if m is not None:
        return m["kind"]
    if not folder.is_dir():
        return None
    names = set(_names(folder))
    for kind, k in KINDS.items():
        if any(set(need) <= names for need in k.legacy):
            return kind
    return None


def foreign_entries(folder: str | os.PathLike, kind: str, entries: Iterable[str] = ()) -> list[str]:
    """Top-level names in ``folder`` that an output of ``kind`` does not write."""
    folder = Path(folder)
    marker = read_marker(folder)
    return [n for n in _names(folder) if not _allowed(n, kind, marker, entries)]


def check_replaceable(folder: str | os.PathLike, kind: str, entries: Iterable[str] = (), flag: str = "--overwrite",
                      nested_outputs_ok: bool = False, refusal: str | None = None) -> None:
    """Raise :class:`OutputError` unless ``folder`` is an output of ``kind`` holding only what such an output holds.

    ``nested_outputs_ok``: sub-folders that are themselves selfpose outputs are
    tolerated (in-place outputs such as runs keep them: a pose folder fitted into
    ``RUN/pose`` survives ``pretrain --overwrite``).
    """
    folder = Path(folder)
    refusal = refusal or f"{flag} will not replace it"
    if folder.is_symlink():
        raise OutputError(f"{folder} is a symbolic link; {flag} replaces only real folders — "
                          "give the folder it points to, or another output folder")
    if not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; selfpose will not replace it — "
                          "choose another output folder")
    found = output_kind(folder)
    if found is None:
        raise OutputError(f"{folder} was not written by selfpose (no {MARKER}); {refusal} — "
                          "choose another output folder (or move it away yourself)")
    if found != kind:
        raise OutputError(f"{folder} is a selfpose {found} folder, not a {kind}; {refusal} — "
                          "choose another output folder")
    foreign = foreign_entries(folder, kind, entries)
    if nested_outputs_ok:
        # Nested outputs are kept, and so are the lock file and partial folders a killed writer of one
        # (e.g. fit-pose --out RUN/pose, SIGKILLed) left beside it; its next writer cleans them.
        foreign = [n for n in foreign if not _sibling_artefact(n)
                   and (not (folder / n).is_dir() or output_kind(folder / n) is None)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" (+{len(foreign) - 3} more)" if len(foreign) > 3 else "")
        raise OutputError(f"{folder} holds files selfpose did not write ({shown}); {flag} could delete or "
                          "mix with them — move them out, or choose another output folder")


_ARTEFACT = re.compile(r"\..+\.(lock|(partial|old)-\d+-[0-9a-f]{8})")


def _sibling_artefact(name: str) -> bool:
    """Whether ``name`` is the sibling lock file or a partial/old folder of an atomically written output."""
    return _ARTEFACT.fullmatch(name) is not None


def check_inputs(out: str | os.PathLike, inputs: Iterable, replacing: bool = True) -> None:
    """Refuse an output that is one of the command's inputs, lies inside one, or (when ``replacing``) holds one.

    ``inputs``: paths, or ``(path, inside_ok)`` pairs where ``inside_ok`` allows
    the output inside that input (a pose folder written into its run folder).
    """
    dst = Path(out).resolve()
    for item in inputs:
        path, inside_ok = item if isinstance(item, tuple) else (item, False)
        if path is None:
            continue
        src = Path(path).resolve()
        if dst == src:
            raise OutputError(f"the output folder {out} is the command's input {path}; choose another output folder")
        if src in dst.parents and not inside_ok:
            raise OutputError(f"the output folder {out} lies inside the command's input {path}; "
                              "choose an output folder outside it")
        if replacing and dst in src.parents:
            raise OutputError(f"the output folder {out} contains the command's input {path}; replacing it would "
                              "delete the input — choose another output folder")


# --- the lock --------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command() -> str:
    """This process's command line, ``selfpose ...`` for the CLI however it was started (for lock messages)."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    if first.name == "selfpose" or (first.name == "__main__.py" and first.parent.name == "selfpose"):
        argv[0] = "selfpose"
    return " ".join(argv)[:200]


def _holder_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _read_holder(path: Path) -> dict:
    try:
        d = json.loads(path.read_text() or "{}")
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _unwritable(e: OSError, folder: Path) -> Exception:
    """A user error for an output folder that cannot be written (no permission, read-only, full), else ``e``."""
    full = disk_full(e, folder)
    if full is not None:
        return full
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write in {folder} ({e.strerror}); choose an output folder you can write to")
    return e


def _busy_error(folder: Path, holder: dict) -> OutputError:
    who = f"process {holder.get('pid', '?')}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        who += f" on {holder['host']}"
    cmd = f" ({holder['command']})" if holder.get("command") else ""
    return OutputError(f"{folder} is being written by {who}{cmd}; wait for it to finish or stop it, "
                       "or choose another output folder")


class OutputLock:
    """An exclusive ``flock`` on ``path`` (a lock file), held until :meth:`release`.

    The file records the holder (pid, host, command). ``remove``: delete the
    lock file on release (sibling lock files of atomically replaced outputs);
    the acquirer checks that the file it locked is still the one at ``path``,
    so a concurrent removal cannot give two holders.
    """

    def __init__(self, path: Path, folder: Path, remove: bool = False):
        self.path, self.folder, self.remove = path, folder, remove
        self._fd: int | None = None
        #: a lock file that cannot be created (no permission, read-only) is skipped rather than an error
        self.skip_unwritable = False

    def acquire(self) -> "OutputLock":
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                if self.skip_unwritable and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    return self
                raise _unwritable(e, self.folder) from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy_error(self.folder, _read_holder(self.path)) from None
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                # Some network filesystems have no locks: write unprotected rather than not at all.
                logger.warning("cannot lock %s (%s): the filesystem has no locks; make sure no other selfpose "
                               "process writes %s", self.path, e.strerror, self.folder)
                return self
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # removed by its previous holder meanwhile: lock the new file
        with contextlib.suppress(OSError):   # the holder's note is a courtesy (a full disk must not stop here)
            os.ftruncate(fd, 0)
            os.write(fd, _holder_text().encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self.remove:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            else:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def folder_lock(folder: str | os.PathLike) -> OutputLock:
    """The lock of an in-place output (``FOLDER/.selfpose.lock``; the folder must exist)."""
    folder = Path(folder)
    return OutputLock(folder / LOCK, folder)


def _named(path: str | os.PathLike) -> Path:
    """``path``, made absolute when it has no name of its own (``.``, ``..``): its siblings need its name."""
    p = Path(path)
    return Path(os.path.abspath(p)) if p.name in ("", "..") else p


def sibling_lock(folder: str | os.PathLike) -> OutputLock:
    """The lock of an atomically replaced output (``.NAME.lock`` beside it)."""
    folder = _named(folder)
    return OutputLock(folder.parent / f".{folder.name}.lock", folder, remove=True)


def lock_holder(folder: str | os.PathLike) -> dict | None:
    """Who holds ``folder``'s in-place lock (``{"pid", "host", "command", "since"}``), or None when it is free.

    A lock held by this very process (another handle) counts as held.
    """
    import fcntl

    path = Path(folder) / LOCK
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": "?"}
    except OSError:
        return None   # a filesystem without locks: nobody can be seen holding one
    finally:
        os.close(fd)
    return None


# --- stale partial folders -------------------------------------------------------------

def _owner_pid(name: str, prefix: str) -> int | None:
    parts = name[len(prefix):].split("-")
    return int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else None


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove ``.NAME.partial-*``/``.NAME.old-*`` folders of output ``out`` left by killed processes.

    Only folders whose owner pid (in the name) is dead, on this host, are
    touched; when ``out`` itself is missing because its writer died between
    the two renames of a swap, the previous output (``.old-``) is put back.
    Folders of an older selfpose (no pid) are reported, never deleted. Call
    it while holding the output's lock. Returns the folders removed.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return []
    removed = []
    host = socket.gethostname()
    for kind in ("old", "partial"):
        prefix = f".{out.name}.{kind}-"
        for p in sorted(out.parent.glob(_glob_escape(prefix) + "*")):
            pid = _owner_pid(p.name, prefix)
            if pid is None:
                logger.warning("%s was left by an interrupted selfpose write; delete it if no other selfpose "
                               "process writes %s", p, out)
                continue
            info = _read_holder(p / PARTIAL_INFO) if kind == "partial" else {}
            if info.get("host", host) != host or pid == os.getpid() or _pid_alive(pid):
                continue
            if kind == "old" and not out.exists() and read_marker(p) is not None:
                os.rename(p, out)
                logger.warning("restored %s from %s (its replacement was interrupted)", out, p.name)
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
            logger.warning("removed %s, left by a killed selfpose process (pid %d)", p, pid)
    return removed


def _glob_escape(s: str) -> str:
    import glob

    return glob.escape(s)


# --- writing outputs ----------------------------------------------------------------

def _rmtree_quiet(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def check_output(out: str | os.PathLike, kind: str, *, overwrite: bool = False, inputs: Iterable = (),
                 entries: Iterable[str] = (), flag: str = "--overwrite") -> None:
    """The checks of :func:`atomic_output`, without writing anything (to fail before a long set-up)."""
    out = _named(out)
    check_inputs(out, inputs, replacing=True)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise OutputError(f"{out} already exists; choose another output folder or pass {flag}")
        check_replaceable(out, kind, entries, flag)


def replace_text(path: str | os.PathLike, text: str, folder: str | os.PathLike | None = None) -> Path:
    """Replace the file ``path`` whole with ``text`` (UTF-8): written beside it, then renamed, so a reader sees
    the old file or the new one. A full disk is a one-line :class:`~selfpose.errors.DiskFullError` naming
    ``folder`` (default: the file's folder) and leaves the old file as it was."""
    from selfpose.errors import disk_full

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise disk_full(e, folder if folder is not None else path.parent) or e
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike, kind: str, *, overwrite: bool = False, inputs: Iterable = (),
                  entries: Iterable[str] = (), flag: str = "--overwrite") -> Iterator[Path]:
    """Build output ``out`` of ``kind`` in a hidden partial folder (yielded), swap it in on success.

    Checks before anything is written: ``out`` is not an input (see
    :func:`check_inputs`); an existing ``out`` needs ``overwrite`` and must be
    replaceable (:func:`check_replaceable`). Holds the output's lock from the
    checks to the swap. On an exception the partial folder is removed and
    ``out`` is left as it was; a disk-full error becomes a
    :class:`~selfpose.errors.DiskFullError` naming ``out``.

    The yielded folder exists and is empty but for a small ownership file
    that is removed before the swap. The marker is written last, listing the
    top-level names the command wrote.
    """
    out = _named(out)   # `--out .` works on the folder's own name (its lock and partial sit beside it)
    inputs, entries = list(inputs), tuple(entries)

    def check() -> None:
        check_output(out, kind, overwrite=overwrite, inputs=inputs, entries=entries, flag=flag)

    check()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(e, out.parent) from e
    with sibling_lock(out):
        holder = lock_holder(out) if out.is_dir() else None
        if holder is not None:   # a writer works in place there (a run being trained)
            raise _busy_error(out, holder)
        clean_stale(out)
        check()  # again under the lock: another writer may have finished meanwhile
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            (tmp / PARTIAL_INFO).write_text(_holder_text())
            yield tmp
            (tmp / PARTIAL_INFO).unlink()
            write_marker(tmp, kind)
            if out.exists() or out.is_symlink():
                check_replaceable(out, kind, entries, flag)  # a file dropped in while we built?
                old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.rename(out, old)
                try:
                    os.rename(tmp, out)
                except BaseException:
                    os.rename(old, out)
                    raise
                _rmtree_quiet(old)
            else:
                os.rename(tmp, out)
        except OSError as e:
            _rmtree_quiet(tmp)
            raise disk_full(e, out) or e
        except BaseException:
            _rmtree_quiet(tmp)
            raise


@contextlib.contextmanager
def inplace_output(folder: str | os.PathLike, kind: str, *, inputs: Iterable = (), entries: Iterable[str] = (),
                   nested_outputs_ok: bool = True) -> Iterator[OutputLock]:
    """Claim ``folder`` for a writer that works in place (a run, a work folder) and hold its lock.

    Creates the folder when missing. Refused: ``folder`` is an input or lies
    inside one (``(path, True)`` inputs excepted), or it already exists and
    is another kind of output, or it is a non-empty folder selfpose did not
    write. Writes the marker when missing (outputs from before markers get one).
    """
    folder = Path(folder)
    inputs, entries = list(inputs), tuple(entries)

    def check() -> None:
        check_inputs(folder, inputs, replacing=False)
        if folder.exists() or folder.is_symlink():
            real = folder.resolve()   # a run folder may be a link to another disk: write through it
            found = output_kind(real) if real.is_dir() else None
            # Writing in place deletes nothing: the kind must match, other files are left alone
            # (the overwrite of a run checks them, see loop.prepare_out_dir). An unmarked folder
            # holding only names this kind writes is e.g. a run killed before its first checkpoint.
            if real.is_dir() and (found == kind or (found is None and not foreign_entries(real, kind, entries))):
                return
            check_replaceable(real, kind, entries, flag=f"writing a {kind} there",
                              nested_outputs_ok=nested_outputs_ok,
                              refusal=f"selfpose will not write a {kind} into it")

    check()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(e, folder) from e
    with folder_lock(folder) as lock:
        # Nobody is building a replacement of the whole folder. A parent we may not write (a folder of
        # one's own in a shared one) cannot hold such a replacement either: then there is nothing to check.
        sib = sibling_lock(folder)
        sib.skip_unwritable = True
        with sib:
            pass
        check()
        if read_marker(folder) is None:
            write_marker(folder, kind, entries=entries)
        yield lock


__all__ = ("MARKER", "LOCK", "Kind", "KINDS", "register_kind", "read_marker", "write_marker", "output_kind",
           "foreign_entries", "check_replaceable", "check_inputs", "OutputLock", "folder_lock", "sibling_lock",
           "lock_holder", "clean_stale", "check_output", "atomic_output", "inplace_output", "replace_text")
