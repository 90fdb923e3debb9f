"""selfpose.outputs: markers, refusals, atomic replacement, stale partials and the folder lock."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from selfpose.errors import DiskFullError, OutputError
from selfpose.outputs import (LOCK, MARKER, PARTIAL_INFO, atomic_output, check_inputs, clean_stale, folder_lock,
                              foreign_entries, inplace_output, lock_holder, output_kind, read_marker, register_kind)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def make(out: Path, kind: str = "pose", **files: str) -> Path:
    """Write output ``out`` of ``kind`` holding ``files`` (name → text) through atomic_output."""
    with atomic_output(out, kind, overwrite=out.exists()) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)
    return out


def siblings(p: Path) -> list[str]:
    return sorted(x.name for x in p.parent.iterdir() if x.name != p.name)


def test_marker_records_kind_version_and_entries(tmp_path):
    out = make(tmp_path / "pose", **{"pose.json": "{}", "pose_head.json": "{}"})
    m = read_marker(out)
    assert m["kind"] == "pose" and m["selfpose"] and m["created"]
    assert m["entries"] == ["pose.json", "pose_head.json"]
    assert not (out / PARTIAL_INFO).exists()
    assert siblings(out) == []          # no partial, no old, no lock file left beside it
    assert output_kind(out) == "pose"


def test_overwrite_replaces_same_kind_and_needs_the_flag(tmp_path):
    out = make(tmp_path / "pose", **{"pose.json": "1"})
    with pytest.raises(OutputError, match="already exists.*--overwrite"):
        with atomic_output(out, "pose"):
            pass
    make(out, **{"pose.json": "2"})
    assert (out / "pose.json").read_text() == "2" and siblings(out) == []


def test_refuses_folder_with_foreign_file_and_keeps_it(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.txt").write_text("years of work")
    with pytest.raises(OutputError, match=r"mine was not written by selfpose") as e:
        with atomic_output(user, "dataset", overwrite=True):
            pytest.fail("must refuse before building")
    assert "\n" not in str(e.value)
    assert (user / "thesis.txt").read_text() == "years of work"
    # A real output with a file dropped in: refused too, naming the file.
    out = make(tmp_path / "pose", **{"pose.json": "1"})
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        make(out, **{"pose.json": "2"})
    assert (out / "pose.json").read_text() == "1" and (out / "notes.txt").exists()


def test_refuses_another_kind_and_a_file(tmp_path):
    ds = make(tmp_path / "ds", "dataset", **{"index.json": "{}"})
    with pytest.raises(OutputError, match="selfpose dataset folder, not a pose"):
        make(ds, "pose", **{"pose.json": "{}"})
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        with atomic_output(f, "pose", overwrite=True):
            pass
    assert f.read_text() == "x" and (ds / "index.json").exists()


def test_legacy_outputs_without_marker_are_recognised(tmp_path):
    old = tmp_path / "old_store"
    (old / "sequences").mkdir(parents=True)
    (old / "index.json").write_text("{}")
    assert output_kind(old) == "dataset"
    make(old, "dataset", **{"index.json": "new"})
    assert (old / "index.json").read_text() == "new" and read_marker(old)["kind"] == "dataset"
    legacy_run = tmp_path / "run"
    (legacy_run / "checkpoints").mkdir(parents=True)
    (legacy_run / "config.yaml").write_text("a: 1")
    assert output_kind(legacy_run) == "run"
    for sub in ("analysis", "pretext"):        # what analyze RUN and evaluate RUN (a sync run) write into it
        (legacy_run / sub).mkdir()
        (legacy_run / sub / "x.png").write_text("x")
    assert foreign_entries(legacy_run, "run") == []
    (legacy_run / "my.txt").write_text("x")   # any other file: refused
    with pytest.raises(OutputError, match="my.txt"):
        make(legacy_run, "run", **{"config.yaml": "b"})


def test_pose_folder_of_an_older_selfpose_and_one_analysed_can_be_replaced(tmp_path):
    # Before markers a pose folder held pose.json, the head's folder pose_head/ and evaluate's results;
    # the later commands add analysis/ (analyze POSE). --overwrite (fit again) must replace both.
    legacy = tmp_path / "legacy_pose"
    (legacy / "pose_head").mkdir(parents=True)
    (legacy / "pose_head" / "pose_head.json").write_text("{}")
    for name in ("pose.json", "results.json", "results.md"):
        (legacy / name).write_text("{}")
    assert output_kind(legacy) == "pose"
    make(legacy, "pose", **{"pose.json": "new"})
    assert (legacy / "pose.json").read_text() == "new" and not (legacy / "pose_head").exists()
    analysed = make(tmp_path / "pose", **{"pose.json": "1"})
    for sub in ("encoder", "analysis"):
        (analysed / sub).mkdir()
        (analysed / sub / "x").write_text("x")
    make(analysed, **{"pose.json": "2"})
    assert (analysed / "pose.json").read_text() == "2" and not (analysed / "analysis").exists()


def test_out_given_as_dot_is_replaced_by_its_own_name(tmp_path, monkeypatch):
    # `--out .` inside an output: its lock and partial folder go beside it (they went inside it, as "..lock",
    # and the overwrite was refused as holding a file selfpose did not write)
    out = make(tmp_path / "pose", **{"pose.json": "1"})
    monkeypatch.chdir(out)
    make(Path("."), **{"pose.json": "2"})
    assert (out / "pose.json").read_text() == "2" and siblings(out) == []


def test_new_kinds_need_no_special_case(tmp_path):
    out = make(tmp_path / "lift", "lifter", **{"weights.bin": "w"})
    make(out, "lifter", **{"weights.bin": "w2", "extra.json": "{}"})   # its marker lists what it wrote
    with pytest.raises(OutputError, match="lifter folder, not a run"):
        make(out, "run", **{"config.yaml": ""})
    register_kind("lifter2", entries=("weights.*",))
    assert output_kind(make(tmp_path / "l2", "lifter2", **{"weights.a": ""})) == "lifter2"


@pytest.mark.parametrize("where", ["same", "inside_out", "out_inside"])
def test_refuses_the_commands_input(tmp_path, where):
    data = make(tmp_path / "data", "dataset", **{"index.json": "{}"})
    out = {"same": data, "inside_out": tmp_path, "out_inside": data / "pose"}[where]
    with pytest.raises(OutputError, match="input"):
        with atomic_output(out, "pose", overwrite=True, inputs=[data]):
            pass
    assert (data / "index.json").exists()
    check_inputs(tmp_path / "run" / "pose", [(tmp_path / "run", True)])   # allowed when asked


def test_failure_keeps_the_previous_output(tmp_path):
    out = make(tmp_path / "pose", **{"pose.json": "old"})
    with pytest.raises(RuntimeError, match="fit failed"):
        with atomic_output(out, "pose", overwrite=True) as tmp:
            (tmp / "pose.json").write_text("half")
            raise RuntimeError("fit failed")
    assert (out / "pose.json").read_text() == "old" and siblings(out) == []


def test_disk_full_is_a_one_line_error_and_nothing_half_written(tmp_path):
    out = make(tmp_path / "pose", **{"pose.json": "old"})
    with pytest.raises(DiskFullError, match=r"disk full while writing .*pose"):
        with atomic_output(out, "pose", overwrite=True) as tmp:
            (tmp / "pose.json").write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (out / "pose.json").read_text() == "old" and siblings(out) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_partials_cleaned_only_when_their_pid_is_dead(tmp_path):
    out = tmp_path / "ds"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".ds.partial-{dead}-abcd1234"
    live = tmp_path / f".ds.partial-{alive}-abcd1234"
    legacy = tmp_path / ".ds.partial-1a2b3c4d"
    other = tmp_path / f".other.partial-{dead}-abcd1234"
    for p in (stale, live, legacy, other):
        (p / "sequences").mkdir(parents=True)
    make(out, "dataset", **{"index.json": "{}"})   # the next write of ds cleans up
    assert not stale.exists()
    assert live.exists() and legacy.exists() and other.exists()   # never anything else


def test_interrupted_swap_restores_the_previous_output(tmp_path):
    out = make(tmp_path / "pose", **{"pose.json": "old"})
    old = tmp_path / f".pose.old-{_dead_pid()}-00000000"
    os.rename(out, old)                    # killed between the two renames of a swap
    clean_stale(out)
    assert (out / "pose.json").read_text() == "old" and not old.exists()


def test_lock_held_by_another_process_names_its_pid(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        from selfpose.outputs import folder_lock
        with folder_lock({str(run)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        assert lock_holder(run)["pid"] == p.pid
        with pytest.raises(OutputError, match=rf"being written by process {p.pid}\b") as e:
            with inplace_output(run, "run"):
                pass
        assert "\n" not in str(e.value)
        p.kill()       # SIGKILL: no clean-up; the kernel drops the flock
        p.wait()
        assert lock_holder(run) is None
        with inplace_output(run, "run"):
            assert lock_holder(run)["pid"] == os.getpid()
            with pytest.raises(OutputError, match=str(os.getpid())):
                folder_lock(run).acquire()       # a second handle, even in this process
        assert lock_holder(run) is None and (run / LOCK).exists() and read_marker(run)["kind"] == "run"
    finally:
        p.kill()
        p.wait()


def test_atomic_replace_refused_while_the_folder_is_written_in_place(tmp_path):
    run = tmp_path / "run"
    with inplace_output(run, "run"):
        (run / "config.yaml").write_text("a: 1")
        with pytest.raises(OutputError, match="being written by process"):
            make(run, "run", **{"config.yaml": "b"})
    assert (run / "config.yaml").read_text() == "a: 1"


def test_inplace_refuses_user_folder_and_other_kinds(tmp_path):
    user = tmp_path / "home"
    user.mkdir()
    (user / "notes.md").write_text("x")
    with pytest.raises(OutputError, match="will not write a run into it"):
        with inplace_output(user, "run"):
            pass
    assert sorted(os.listdir(user)) == ["notes.md"]          # not even a lock file left
    ds = make(tmp_path / "ds", "dataset", **{"index.json": "{}"})
    with pytest.raises(OutputError, match="dataset folder, not a benchmark"):
        with inplace_output(ds, "benchmark"):
            pass
    with inplace_output(tmp_path / "new", "benchmark"):
        pass
    assert json.loads((tmp_path / "new" / MARKER).read_text())["kind"] == "benchmark"


def test_run_overwrite_keeps_a_nested_pose_folder_and_what_its_killed_writer_left(tmp_path):
    # fit-pose --out RUN/pose SIGKILLed leaves RUN/.pose.lock and RUN/.pose.partial-PID-RAND; neither is a
    # user's file, so pretrain --overwrite RUN goes on (keeping them, like the pose folder itself).
    from selfpose.training.loop import prepare_out_dir

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("a: 1")
    make(run / "pose", **{"pose.json": "{}"})
    (run / ".pose.lock").write_text("")
    (run / ".pose.partial-999999-0123abcd").mkdir()
    (run / "metrics.csv.tmp").write_text("step")   # and a run killed while it rewrote its metrics
    prepare_out_dir(run, resume=False, overwrite=True)
    assert sorted(os.listdir(run)) == [".pose.lock", ".pose.partial-999999-0123abcd", MARKER, "metrics.csv.tmp",
                                       "pose"]
    (run / "config.yaml").write_text("a: 1")
    (run / ".notes.txt").write_text("mine")    # a hidden file of the user's is still refused
    with pytest.raises(OutputError, match=r"\.notes\.txt"):
        prepare_out_dir(run, resume=False, overwrite=True)
    assert (run / ".notes.txt").exists() and (run / "config.yaml").exists()


def test_unwritable_folder_and_lockless_filesystem(tmp_path, monkeypatch, caplog):
    import fcntl

    import selfpose.outputs as outputs

    real_open = os.open

    def no_permission(path, *a, **k):
        if str(path).endswith(LOCK):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(outputs.os, "open", no_permission)
    with pytest.raises(OutputError, match="cannot write in .*run.*Permission denied"):
        with inplace_output(tmp_path / "run", "run"):
            pass
    # A run folder of one's own inside a folder one may not write: the in-place writer works (only the
    # check for a replacement being built beside it needs the parent, and none can be built there).
    def parent_read_only(path, *a, **k):
        if Path(path) == tmp_path / ".run.lock":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(outputs.os, "open", parent_read_only)
    with inplace_output(tmp_path / "run", "run"):
        assert lock_holder(tmp_path / "run")["pid"] == os.getpid()
    monkeypatch.setattr(outputs.os, "open", real_open)

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with inplace_output(tmp_path / "run", "run"):     # writes, unprotected, and says so
        (tmp_path / "run" / "config.yaml").write_text("a: 1")
    assert "filesystem has no locks" in caplog.text


def test_dataset_writer_disk_full_keeps_the_old_store(tmp_path, monkeypatch):
    """What prepare and synth write through: ENOSPC mid-sequence → DiskFullError, the old store intact."""
    import numpy as np

    import selfpose.data.store as store
    from selfpose.data.sequence import SequenceMeta

    def write(path, n):
        with store.DatasetWriter(path, overwrite=path.exists()) as w:
            for i in range(n):
                meta = SequenceMeta(f"s{i}", "S1", "walk", f"t{i}", "c0", 10.0, 3, 8, 8)
                w.write_sequence(meta, frames=np.zeros((3, 8, 8, 3), np.uint8))

    out = tmp_path / "ds"
    write(out, 1)
    real = store._StreamedArray.append
    calls = []

    def append(self, chunk):
        calls.append(1)
        if len(calls) > 1:
            self._fh.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, chunk)

    monkeypatch.setattr(store._StreamedArray, "append", append)
    with pytest.raises(DiskFullError, match=rf"disk full while writing {out}"):
        write(out, 3)
    assert len(store.Dataset.open(out)) == 1 and siblings(out) == []
