"""Damaged inputs a user can hand selfpose: each is one line on stderr and exit 2, and nothing is lost or made.

Cases (issue 11, item 4 and 8): a truncated or corrupt npz/pickle given to
each of the four dataset preparers, a NaN/inf learning rate, NaN 3D labels
in ``evaluate``, a corrupt run ``config.yaml``, an ``index.json`` that
disagrees with the arrays (or is garbage), ``evaluate --json`` on data
without boxes (strict JSON), and ``predict``'s summary line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from selfpose.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r, *needles: str) -> str:
    """Exit 2, no traceback, exactly one line on stderr, holding every needle."""
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Content hash of every file under ``folder`` (to show nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def fixture_copy(shared_file, rel: str, dst: Path, names: tuple[str, ...]) -> Path:
    """Copy some files of ``shared/data/fixtures/REL`` into ``dst`` (skip when the fixtures are absent)."""
    src = shared_file(f"fixtures/{rel}")
    dst.mkdir(parents=True)
    for n in names:
        shutil.copy(src / n, dst / n)
        (dst / n).chmod(0o644)
    return dst


# --------------------------------------------------------------------------- preparers


PREPARERS = [  # format, fixture folder, files copied, the file that is damaged
    ("h36m", "h36m", ("test_h36m_body3d.npz", "cameras.pkl"), "test_h36m_body3d.npz"),
    ("mpi-inf-3dhp", "mpi_inf_3dhp", ("test_3dhp_test.npz", "cameras_test.pkl"), "test_3dhp_test.npz"),
    ("humaneva", "humaneva", ("data_3d_humaneva15.npz",), "data_3d_humaneva15.npz"),
    ("3dpw", "3dpw", ("sample_3dpw_test.npz",), "sample_3dpw_test.npz"),
]


@pytest.mark.parametrize("fmt,rel,names,damaged", PREPARERS, ids=[p[0] for p in PREPARERS])
def test_truncated_npz_for_each_preparer(fmt, rel, names, damaged, tmp_path, shared_file):
    src = fixture_copy(shared_file, rel, tmp_path / "src", names)
    truncate(src / damaged)
    before = digest(src)
    line = one_line_error(invoke("prepare", fmt, src, "--out", tmp_path / "out"), damaged, "truncated")
    assert "again" in line                                   # says what to do
    assert not (tmp_path / "out").exists() and digest(src) == before
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no partial folder either


@pytest.mark.parametrize("content", [b"garbage\n", None], ids=["garbage", "truncated"])
@pytest.mark.parametrize("fmt,rel,names,pkl", [
    ("h36m", "h36m", ("test_h36m_body3d.npz", "cameras.pkl"), "cameras.pkl"),
    ("mpi-inf-3dhp", "mpi_inf_3dhp", ("test_3dhp_test.npz", "cameras_test.pkl"), "cameras_test.pkl"),
], ids=["h36m", "mpi-inf-3dhp"])
def test_corrupt_camera_pickle(fmt, rel, names, pkl, content, tmp_path, shared_file):
    src = fixture_copy(shared_file, rel, tmp_path / "src", names)
    if content is None:
        truncate(src / pkl, 0.3)
    else:
        (src / pkl).write_bytes(content)
    one_line_error(invoke("prepare", fmt, src, "--out", tmp_path / "out"), pkl)
    assert not (tmp_path / "out").exists()


def _npz_with_bad_object_array(path: Path) -> None:
    """A 3DPW-style npz whose pickled ``smpl`` dict is cut short (the zip itself is intact)."""
    np.savez(path, image_path=np.array(["imageFiles/courtyard_x_00/image_00000.jpg"]),
             bbox_xywh=np.zeros((1, 4)), smpl=np.array({"body_pose": np.zeros((1, 23, 3)),
                                                          "global_orient": np.zeros((1, 3))}, dtype=object))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["smpl.npy"] = members["smpl.npy"][:len(members["smpl.npy"]) - 40]
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def test_3dpw_npz_with_corrupt_pickled_object(tmp_path):
    (tmp_path / "src").mkdir()
    _npz_with_bad_object_array(tmp_path / "src" / "pw.npz")
    one_line_error(invoke("prepare", "3dpw", tmp_path / "src", "--out", tmp_path / "out"), "pw.npz", "corrupt")
    assert not (tmp_path / "out").exists()


def test_not_an_npz_at_all(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data_3d_humaneva15.npz").write_bytes(b"\x00" * 100)
    one_line_error(invoke("prepare", "humaneva", tmp_path / "src", "--out", tmp_path / "out"),
                   "data_3d_humaneva15.npz")


def test_safe_read_errors_name_the_file(tmp_path):
    from selfpose.data.datasets.safe_read import npz_keys, read_json, read_npz, read_pickle
    from selfpose.errors import InputFileError

    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\x80\x04\x95garbage")
    for reader in (read_npz, npz_keys, read_pickle, read_json):
        with pytest.raises(InputFileError, match="x.bin"):
            reader(bad)
    with pytest.raises(InputFileError, match="not found"):
        read_pickle(tmp_path / "missing.pkl")


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("override", ["optim.lr=nan", "optim.lr=inf", "optim.lr=-.inf", "optim.weight_decay=nan",
                                      "optim.grad_clip=nan", "loss.w_rgb=nan"])
def test_non_finite_config_floats(override, tmp_path):
    key = override.split("=")[0]
    one_line_error(invoke("pretrain", "--data", tmp_path / "nope", "--out", tmp_path / "run", override),
                   key, "finite")
    assert not (tmp_path / "run").exists()


def test_optim_config_built_in_code_rejects_nan():
    from selfpose.config import ConfigError
    from selfpose.training.config import OptimConfig

    for kw in ({"lr": float("nan")}, {"lr": float("inf")}, {"min_lr_ratio": float("nan")},
               {"betas": (0.9, float("nan"))}):
        with pytest.raises(ConfigError, match="finite"):
            OptimConfig(**kw)


# --------------------------------------------------------------------------- a tiny run and pose folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 4-sequence synthetic dataset, a 2-step run and a pose folder fitted on it (a few seconds)."""
    from selfpose.config import from_dict
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.pose.stage import PoseStageConfig, fit_pose_stage
    from selfpose.pretrain import PretrainConfig, pretrain

    root = tmp_path_factory.mktemp("faults")
    data = synthesize(SynthConfig(scenario="lab", height=48, width=48, max_sequences=2, max_seconds=2.0, views=2,
                                  num_subjects=2), root / "lab", progress=False)
    cfg = from_dict(PretrainConfig, {"sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0},
                                     "train": {"steps": 2, "batch_size": 2, "num_workers": 0, "threads": 1,
                                               "checkpoint_every": 2, "picture_every": 2}})
    pretrain(cfg, data, root / "run", progress=False)
    fit_pose_stage(root / "run", data, root / "pose",
                   from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 5}}), progress=False)
    return root


def _edit_index(ds: Path, fn) -> None:
    p = ds / "index.json"
    index = json.loads(p.read_text())
    fn(index)
    p.write_text(json.dumps(index))


def _set_joints3d(ds: Path, fn) -> None:
    for p in sorted((ds / "sequences").glob("*/joints3d.npy")):
        a = np.load(p)
        fn(p.parent.name, a)
        np.save(p, a)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # inf - inf when centring
def test_nan_labels_are_left_out_and_counted(tiny, tmp_path):
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)
    first = sorted((ds / "sequences").iterdir())[0].name

    def poison(seq, a):
        if seq == first:
            a[3:6, 2] = np.nan      # one joint of three frames
            a[7, :, :] = np.inf
    _set_joints3d(ds, poison)
    r = invoke("evaluate", tiny / "pose", "--data", ds)
    assert r.exit_code == 0, r.output
    assert "4 without finite 3D labels skipped" in r.stdout
    res = json.loads((tiny / "pose" / "results.json").read_text())
    assert res["excluded_frames"] == 4 and res["overall"]["count"] == res["num_samples"] - 4
    assert np.isfinite(res["overall"]["p_mpjpe"])


def test_all_labels_nan_is_one_line_and_keeps_the_old_results(tiny, tmp_path):
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)
    _set_joints3d(ds, lambda seq, a: a.fill(np.nan))
    before = digest(tiny / "pose")
    one_line_error(invoke("evaluate", tiny / "pose", "--data", ds), "finite 3D labels")
    assert digest(tiny / "pose") == before


def test_disk_full_while_evaluate_writes_keeps_the_old_results(tiny, tmp_path, monkeypatch):
    import errno

    pose = tmp_path / "pose"
    shutil.copytree(tiny / "pose", pose)
    (pose / "results.json").write_text('{"old": true}')
    real = Path.write_text

    def full(self, text, *a, **kw):
        if self.name.endswith(".tmp") and "results" in self.name:
            real(self, text[: len(text) // 2], *a, **kw)     # half of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, text, *a, **kw)

    monkeypatch.setattr(Path, "write_text", full)
    one_line_error(invoke("evaluate", pose, "--data", tiny / "lab"), "disk full", str(pose))
    monkeypatch.undo()
    assert json.loads((pose / "results.json").read_text()) == {"old": True}
    assert not [p.name for p in pose.iterdir() if p.name.endswith(".tmp")]


def test_p_mpjpe_names_non_finite_input():
    from selfpose.evaluation.metrics import MetricError, p_mpjpe

    a = np.random.default_rng(0).normal(size=(4, 17, 3))
    b = a.copy()
    b[1, 2, 0] = np.nan
    with pytest.raises(MetricError, match="1 of 4 samples"):
        p_mpjpe(a, b)


def _reject_nan(name):
    raise ValueError(f"not JSON: {name}")


def test_evaluate_json_is_strict_without_boxes(tiny, tmp_path):
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)

    def drop_boxes(index):
        for s in index["sequences"]:
            s["attrs"]["arrays"].remove("boxes")
            (ds / "sequences" / s["id"] / "boxes.npy").unlink()
    _edit_index(ds, drop_boxes)
    r = invoke("evaluate", tiny / "pose", "--data", ds, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout, parse_constant=_reject_nan)
    assert res["box_iou"] is None and res["overall"]["count"] > 0
    json.loads((tiny / "pose" / "results.json").read_text(), parse_constant=_reject_nan)


def test_evaluate_line_shows_a_dash_for_a_metric_that_does_not_apply():
    from selfpose.cli import evaluate_line

    res = {"overall": {"mpjpe": 100.0, "n_mpjpe": 90.0, "p_mpjpe": 70.0, "count": 12}, "box_iou": float("nan"),
           "excluded_frames": 0}
    assert evaluate_line(res, Path("P")) == ("MPJPE 100.0 mm · N-MPJPE 90.0 mm · P-MPJPE 70.0 mm · box IoU – · "
                                             "12 frames → P/results.md")
    res["probes"] = {"ridge": {"n_mpjpe": 95.04}, "knn": {"n_mpjpe": 88.0}}   # the probes beside the head
    assert evaluate_line(res, Path("P")) == ("MPJPE 100.0 mm · N-MPJPE 90.0 mm · P-MPJPE 70.0 mm · ridge probe "
                                             "N-MPJPE 95.0 mm · knn probe N-MPJPE 88.0 mm · box IoU – · "
                                             "12 frames → P/results.md")


@pytest.mark.filterwarnings("ignore::UserWarning")   # a noise clip has no background to estimate
def test_predict_prints_frames_and_folder(tiny, tmp_path):
    from selfpose.viz.video import write_video

    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "clip.mp4", rng.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8), fps=10)
    r = invoke("predict", tiny / "pose", video, "--out", tmp_path / "pred")
    assert r.exit_code == 0, r.output
    line = r.stdout.strip().splitlines()[-1]
    assert line == f"{video}: 6 frames → {tmp_path / 'pred' / 'clip'}", line
    assert (tmp_path / "pred" / "clip").is_dir() and "None" not in r.stdout
    # predictions do not go into a selfpose output folder (the pose folder, its run, the dataset)
    before = digest(tiny / "pose")
    for folder, kind in ((tiny / "pose", "pose"), (tiny / "run", "run"), (tiny / "lab", "dataset")):
        one_line_error(invoke("predict", tiny / "pose", video, "--out", folder), f"selfpose {kind} folder")
        assert not (folder / "clip").exists()
    assert digest(tiny / "pose") == before


def test_analyze_out_may_not_be_a_selfpose_output(tiny):
    before = digest(tiny / "lab")
    one_line_error(invoke("analyze", tiny / "run", "--data", tiny / "lab", "--out", tiny / "lab"),
                   "selfpose dataset folder")
    assert digest(tiny / "lab") == before


# --------------------------------------------------------------------------- run config.yaml


@pytest.mark.parametrize("content,needle", [
    ("method: temporal\nmodel: [unclosed\n", "not valid YAML"),
    ("- a\n- list\n", "must hold a mapping"),
    ("", "must hold a mapping"),
    ("modle: 3\n", "unknown config key 'modle'"),
    (b"\xff\xfe\x00garbage", "cannot read"),
], ids=["yaml", "list", "empty", "unknown-key", "binary"])
def test_corrupt_run_config(tiny, tmp_path, content, needle):
    run = tmp_path / "run"
    shutil.copytree(tiny / "run", run)
    cfg = run / "config.yaml"
    cfg.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = digest(run)
    line = one_line_error(invoke("fit-pose", run, "--data", tiny / "lab", "--out", tmp_path / "pose"),
                          str(cfg), needle)
    assert "pretrain again" in line
    assert not (tmp_path / "pose").exists() and digest(run) == before
    one_line_error(invoke("analyze", run, "--data", tiny / "lab", "--out", tmp_path / "ana"), str(cfg))


# --------------------------------------------------------------------------- index.json


def test_index_frame_count_disagrees_with_arrays(tiny, tmp_path):
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)
    seq = json.loads((ds / "index.json").read_text())["sequences"][1]["id"]
    _edit_index(ds, lambda index: index["sequences"][1].update(num_frames=index["sequences"][1]["num_frames"] + 9))
    before = digest(ds)
    for args in (("info", ds), ("evaluate", tiny / "pose", "--data", ds),
                 ("show", ds, "--out", tmp_path / "sheet.png")):
        one_line_error(invoke(*args), repr(seq), "index.json says", "prepare the dataset again")
    assert digest(ds) == before and not (tmp_path / "sheet.png").exists()
    # `info --check` still lists every problem instead of stopping at the first
    r = invoke("info", ds, "--check")
    assert r.exit_code == 1 and f"{seq}: frames has shape" in r.stdout


@pytest.mark.parametrize("damage", ["truncated", "garbage", "binary", "list", "no-sequences", "bad-entry",
                                    "array-missing", "array-truncated"])
def test_damaged_index_or_arrays(tiny, tmp_path, damage):
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)
    index = ds / "index.json"
    frames = next((ds / "sequences").glob("*/frames.npy"))
    if damage == "truncated":
        truncate(index, 0.3)
    elif damage == "garbage":
        index.write_text("}{ not json")
    elif damage == "binary":
        index.write_bytes(b"\xff\xfe\x00\x01")
    elif damage == "list":
        index.write_text("[1, 2]")
    elif damage == "no-sequences":
        index.write_text(json.dumps({"format": "selfpose-dataset", "version": 1}))
    elif damage == "bad-entry":
        _edit_index(ds, lambda i: i["sequences"].__setitem__(0, {"id": "x"}))
    elif damage == "array-missing":
        frames.unlink()
    else:
        truncate(frames, 0.5)
    needle = frames.name if damage.startswith("array") else "index"
    one_line_error(invoke("info", ds), needle)


def test_dataset_open_reads_headers_only(tiny, tmp_path, monkeypatch):
    """Opening checks the .npy headers without loading any array."""
    from selfpose.data import store

    def no_load(*a, **k):
        raise AssertionError("Dataset.open must not load arrays")
    monkeypatch.setattr(store.np, "load", no_load)
    ds = store.Dataset.open(tiny / "lab")
    assert len(ds) == 4


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_fit_pose_leaves_out_frames_without_finite_3d(tiny, tmp_path):
    """fit-pose on labels with NaN/inf frames fits on the rest (a float(None) traceback before); none left: one line."""
    ds = tmp_path / "lab"
    shutil.copytree(tiny / "lab", ds)

    def poison(seq, a):
        a[::2] = np.nan        # every other frame of every sequence
    _set_joints3d(ds, poison)
    r = invoke("fit-pose", tiny / "run", "--data", ds, "--labels", "1.0", "--out", tmp_path / "pose",
               "pose.steps=5")
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "pose" / "pose.json").read_text())
    assert np.isfinite(info["val_n_mpjpe"]) and info["num_labelled"] > 0
    _set_joints3d(ds, lambda seq, a: a.fill(np.nan))
    one_line_error(invoke("fit-pose", tiny / "run", "--data", ds, "--out", tmp_path / "pose2"), "finite joints3d")
    assert not (tmp_path / "pose2").exists()
