"""Issue 11, outputs: no command destroys data, two writers never share a folder, a full disk is one line.

Each case goes through the command line (exit status 2, one line ``error: ...``)
and then checks that nothing was lost: the user's file, the run, the dataset,
the old pose folder are still there and still load.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfpose.cli import app

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()
TRAIN = ["train.steps=2", "train.batch_size=2", "train.threads=1", "train.checkpoint_every=1",
         "train.picture_every=0", "sampler.d_pos_s=0.2", "sampler.d_neg_s=0.5"]
FIT = ["--labels", "0.5", "pose.steps=3", "pose.val_by=frames", "batch_size=8"]
SYNTH = ["--size", "32", "max_sequences=1", "max_seconds=1", "views=2"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r, *words: str) -> str:
    """The result is exit 2 with one ``error:`` line (no traceback) containing ``words``."""
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def dataset_ok(d: Path) -> None:
    from selfpose.data.store import Dataset

    ds = Dataset.open(d)
    assert len(ds) == 2 and ds.sequences[0]["frames"].shape[0] > 0


def run_ok(run: Path) -> None:
    from selfpose.pretrain import load_run

    assert load_run(run).method is not None


def pose_ok(pose: Path, mark: str | None = None) -> None:
    from selfpose.pose.stage import load_pose

    lp = load_pose(pose)
    if mark is not None:
        assert lp.info.get("mark") == mark


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny dataset D, a 2-step run RUN and a pose folder P, made once through the CLI."""
    root = tmp_path_factory.mktemp("outputs")
    r = invoke("synth", "lab", "--out", root / "D", *SYNTH)
    assert r.exit_code == 0, r.output
    r = invoke("pretrain", "--data", root / "D", "--out", root / "RUN", *TRAIN)
    assert r.exit_code == 0, r.output
    r = invoke("fit-pose", root / "RUN", "--data", root / "D", "--out", root / "P", *FIT)
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture
def w(built, tmp_path):
    """A private copy of D, RUN and P (tests damage them on purpose)."""
    for name in ("D", "RUN", "P"):
        shutil.copytree(built / name, tmp_path / name, symlinks=True)
    info = json.loads((tmp_path / "P" / "pose.json").read_text())
    info["run"], info["mark"] = str((tmp_path / "RUN").resolve()), "old"
    (tmp_path / "P" / "pose.json").write_text(json.dumps(info))
    return tmp_path


def test_synth_overwrite_refuses_a_users_folder(w):
    user = w / "U"
    user.mkdir()
    (user / "thesis.txt").write_text("mine")
    one_line_error(invoke("synth", "lab", "--out", user, "--overwrite", *SYNTH), str(user), "not written by selfpose")
    assert (user / "thesis.txt").read_text() == "mine" and sorted(os.listdir(user)) == ["thesis.txt"]
    src = w / "videos"
    src.mkdir()
    one_line_error(invoke("prepare", "videos", src, "--out", user, "--overwrite"), str(user), "not written by selfpose")
    # the work folders of demo and benchmark are refused too, before anything is written
    one_line_error(invoke("demo", "--out", user, "--quick"), "will not write a demo into it")
    one_line_error(invoke("benchmark", "--work", user), "will not write a benchmark into it")
    one_line_error(invoke("benchmark", "--work", w / "D"), "dataset folder, not a benchmark")
    assert sorted(os.listdir(user)) == ["thesis.txt"]
    # a dataset with a user's file dropped in is refused too
    (w / "D" / "notes.txt").write_text("mine")
    one_line_error(invoke("synth", "lab", "--out", w / "D", "--overwrite", *SYNTH), "notes.txt")
    dataset_ok(w / "D")


def test_synth_overwrite_replaces_its_own_dataset(w):
    before = (w / "D" / "index.json").read_text()
    r = invoke("synth", "lab", "--out", w / "D", "--overwrite", *SYNTH[:-1], "views=2", "seed=3")
    assert r.exit_code == 0, r.output
    assert (w / "D" / "index.json").read_text() != before
    dataset_ok(w / "D")
    assert not [p for p in os.listdir(w) if p.startswith(".D.")]


def test_fit_pose_out_is_the_run_or_the_data(w):
    one_line_error(invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "RUN", "--overwrite", *FIT),
                   "is the command's input")
    run_ok(w / "RUN")
    one_line_error(invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "D", "--overwrite", *FIT),
                   "is the command's input")
    dataset_ok(w / "D")
    # a pose folder inside its run folder is fine
    r = invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "RUN" / "pose", *FIT)
    assert r.exit_code == 0, r.output
    pose_ok(w / "RUN" / "pose")
    # and pretrain --overwrite keeps it (a selfpose output inside the run), deleting only run files
    r = invoke("pretrain", "--data", w / "D", "--out", w / "RUN", "--overwrite", *TRAIN)
    assert r.exit_code == 0, r.output
    assert (w / "RUN" / "pose" / "pose.json").is_file()


def test_failing_fit_pose_keeps_the_old_pose_folder(w, monkeypatch):
    import selfpose.pose.fit as fit
    from selfpose.pose.stage import PoseStageError

    def broken(*a, **k):
        raise PoseStageError("the head diverged; lower pose.lr")

    monkeypatch.setattr(fit, "fit_pose", broken)
    one_line_error(invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "P", "--overwrite", *FIT),
                   "diverged")
    pose_ok(w / "P", mark="old")
    assert not [p for p in os.listdir(w) if p.startswith(".P.")]


def test_fit_pose_overwrite_replaces_the_old_pose_folder(w):
    r = invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "P", "--overwrite", *FIT)
    assert r.exit_code == 0, r.output
    pose_ok(w / "P")
    assert "mark" not in json.loads((w / "P" / "pose.json").read_text())


def test_pretrain_out_is_the_data_or_holds_foreign_files(w):
    one_line_error(invoke("pretrain", "--data", w / "D", "--out", w / "D", "--overwrite", *TRAIN),
                   "is the command's input")
    dataset_ok(w / "D")
    one_line_error(invoke("pretrain", "--data", w / "D", "--out", w / "P", "--overwrite", *TRAIN),
                   "pose folder, not a run")
    pose_ok(w / "P")
    (w / "RUN" / "my_notes.txt").write_text("mine")
    one_line_error(invoke("pretrain", "--data", w / "D", "--out", w / "RUN", "--overwrite", *TRAIN), "my_notes.txt")
    run_ok(w / "RUN")
    assert (w / "RUN" / "my_notes.txt").read_text() == "mine"


def _wait_for(cond, what: str, proc: subprocess.Popen, limit_s: float = 300) -> None:
    """Poll ``cond`` until true (a guard against hanging, not a timing assertion)."""
    import time

    end = time.monotonic() + limit_s
    while not cond():
        assert proc.poll() is None, f"the writer exited ({proc.returncode}) before {what}"
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_second_writer_of_a_run_is_refused_and_a_killed_one_does_not_block(w):
    from selfpose.outputs import lock_holder

    run = w / "RUN"
    env = {**os.environ, "PYTHONPATH": SRC, "SELFPOSE_PROGRESS": "0"}
    args = [sys.executable, "-m", "selfpose", "pretrain", "--data", str(w / "D"), "--out", str(run), "--resume",
            *TRAIN, "train.steps=1000000", "train.checkpoint_every=100000"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def training() -> bool:
            st = json.loads((run / "run.json").read_text())
            return st["status"] == "running" and st["steps"] == 1000000 and (lock_holder(run) or {}).get("pid")
        _wait_for(training, "the first pretrain to train", first)
        assert lock_holder(run)["pid"] == first.pid
        # the cases: a second --resume, an --overwrite, a fit-pose into the run — all refused
        line = one_line_error(invoke("pretrain", "--data", w / "D", "--out", run, "--resume", *TRAIN),
                              f"process {first.pid}")
        assert "wait for it" in line
        one_line_error(invoke("pretrain", "--data", w / "D", "--out", run, "--overwrite", *TRAIN),
                       f"process {first.pid}")
        first.kill()                     # SIGKILL: run.json still says "running"
        first.wait()
        assert json.loads((run / "run.json").read_text())["status"] == "running"
        one_line_error(invoke("pretrain", "--data", w / "D", "--out", run, *TRAIN), "an interrupted run")
        r = invoke("pretrain", "--data", w / "D", "--out", run, "--resume", *TRAIN, "train.steps=3")
        assert r.exit_code == 0, r.output
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        run_ok(run)
    finally:
        first.kill()
        first.wait()


def test_killed_synth_partial_is_cleaned_by_the_next_synth(w):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        import numpy as np
        from selfpose.data.store import DatasetWriter
        with DatasetWriter({str(w / "NEW")!r}) as wr:
            (wr.tmp / "sequences" / "big.npy").write_bytes(b"x" * 100_000)
            print("writing", flush=True)
            time.sleep(120)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "writing"
        # while it writes, a second synth of the same folder is refused, naming it
        one_line_error(invoke("synth", "lab", "--out", w / "NEW", *SYNTH), f"process {p.pid}")
    finally:
        p.kill()
        p.wait()
    left = [x for x in os.listdir(w) if x.startswith(".NEW.partial-")]
    assert left and not (w / "NEW").exists()     # what a killed synth leaves
    r = invoke("synth", "lab", "--out", w / "NEW", *SYNTH)
    assert r.exit_code == 0, r.output
    assert not [x for x in os.listdir(w) if x.startswith(".NEW.")]
    dataset_ok(w / "NEW")


def _enospc_after(n_ok: int, real):
    """A writer that does ``n_ok`` calls, then writes half a file and raises ENOSPC."""
    calls = {"n": 0}

    def write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n_ok:
            target = next((a for a in args if isinstance(a, (str, Path))), None)
            if target is not None:
                Path(target).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return write


def test_disk_full_during_synth(w, monkeypatch):
    import selfpose.data.store as store

    real = store._StreamedArray.append
    monkeypatch.setattr(store._StreamedArray, "append",
                        lambda self, chunk, _w=_enospc_after(1, lambda *a: real(*a)): _w(self, chunk))
    before = (w / "D" / "index.json").read_text()
    one_line_error(invoke("synth", "lab", "--out", w / "D", "--overwrite", *SYNTH), "disk full", str(w / "D"))
    assert (w / "D" / "index.json").read_text() == before
    dataset_ok(w / "D")
    assert not [x for x in os.listdir(w) if x.startswith(".D.")]


def test_disk_full_during_a_checkpoint(w, monkeypatch):
    import safetensors.torch as st

    shutil.rmtree(w / "RUN")
    monkeypatch.setattr(st, "save_file", _enospc_after(2, st.save_file))   # 1st checkpoint: model + optimizer
    one_line_error(invoke("pretrain", "--data", w / "D", "--out", w / "RUN", *TRAIN), "disk full",
                   str(w / "RUN" / "checkpoints"))
    names = sorted(os.listdir(w / "RUN" / "checkpoints"))
    assert names == ["ckpt-0000001", "latest"]      # the half-written one is gone, the earlier one kept
    assert json.loads((w / "RUN" / "run.json").read_text())["status"] == "failed"
    run_ok(w / "RUN")


def test_disk_full_during_fit_pose(w, monkeypatch):
    import selfpose.pose.fit as fit

    monkeypatch.setattr(fit.FittedPose, "save",
                        lambda self, path, _w=_enospc_after(0, None): _w(Path(str(path) + ".json")))
    one_line_error(invoke("fit-pose", w / "RUN", "--data", w / "D", "--out", w / "P", "--overwrite", *FIT),
                   "disk full", str(w / "P"))
    pose_ok(w / "P", mark="old")
    assert not [x for x in os.listdir(w) if x.startswith(".P.")]


def test_resume_warnings_reach_the_terminal(w):
    # another dataset (same layout, different index) and a changed config
    shutil.copytree(w / "D", w / "D2")
    idx = json.loads((w / "D2" / "index.json").read_text())
    idx["attrs"]["seed"] = 99
    (w / "D2" / "index.json").write_text(json.dumps(idx))
    r = invoke("pretrain", "--data", w / "D2", "--out", w / "RUN", "--resume", *TRAIN, "train.steps=3",
               "optim.lr=0.0005")
    assert r.exit_code == 0, r.output
    err = r.stderr
    assert "resuming on a different dataset" in err and str((w / "D").resolve()) in err
    assert "resuming with a changed config" in err and "lr" in err
    # a broken newest checkpoint: the fall-back is said on the terminal
    newest = sorted((w / "RUN" / "checkpoints").glob("ckpt-*"))[-1]
    (newest / "model.safetensors").write_bytes(b"broken")
    r = invoke("pretrain", "--data", w / "D2", "--out", w / "RUN", "--resume", *TRAIN, "train.steps=4",
               "optim.lr=0.0005")
    assert r.exit_code == 0, r.output
    assert "falling back to an earlier checkpoint" in r.stderr


def test_evaluate_is_refused_while_the_pose_folder_is_being_replaced(w):
    """evaluate takes the pose folder's lock (the one fit-pose holds while it replaces the folder)."""
    from selfpose.outputs import sibling_lock

    with sibling_lock(w / "P"):          # as a fit-pose --overwrite of P in progress holds it
        one_line_error(invoke("evaluate", w / "P", "--data", w / "D"), str(w / "P"))
    pose_ok(w / "P", mark="old")
    r = invoke("evaluate", w / "P", "--data", w / "D")    # free again
    assert r.exit_code == 0, r.output
