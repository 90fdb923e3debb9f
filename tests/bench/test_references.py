"""Issue 14's references, probes, held-out-subject selection and table layout in the lab benchmark."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from selfpose.bench.config import BenchmarkConfig
from selfpose.bench.report import read_table
from selfpose.bench.run import BenchmarkError, check_people, run_benchmark
from selfpose.config import ConfigError, from_dict

SYNTH = {"scenario": "lab", "height": 64, "width": 64, "max_sequences": 4, "max_seconds": 3, "num_subjects": 2,
         "views": 2}
MODEL = {"image_size": 64, "crop_size": 32, "detector_input": 32, "detector_width": 8, "encoder_width": 8,
         "v_dim": 16, "i_dim": 16, "decoder_channels": 16, "decoder_hidden": 64}
BENCH = {
    "methods": ["dsl", "temporal"],   # the full method's row comes first whatever the order here
    "references": ["random", "random_same_crop", "supervised", "supervised_upper", "mean_pose", "box_camera_ridge",
                   "box_camera_knn"],
    "shares": [1.0, 0.5], "seeds": [0], "steps": 2, "pose_steps": 6, "pretrain_config": None,
    "pretrain": {"model": MODEL, "loss": {"perceptual_width": 8}, "sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0},
                 "train": {"batch_size": 2, "threads": 1, "num_workers": 0}},
    "probes": {"knn_ks": [3, 1]},
    "supervised": {"steps": 4, "eval_every": 2, "batch_size": 4, "hidden": 16},
    "data": {"train": {**SYNTH, "subjects": ["train"]},
             "test": {**SYNTH, "subjects": ["test"], "seed": 1, "subject_prefix": "Q"}},
}
ROWS = ["full method (DSL-STN-Dec-Split)", "DSL", "box + camera only (ridge)", "box + camera only (10-NN)",
        "random encoder, same crop", "random encoder, its untrained detector's crop", "supervised from scratch",
        "supervised from scratch, 100% labels (upper bound)", "mean pose"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The benchmark of BENCH run once, every held-out split and every selection set it made recorded."""
    import selfpose.pose.fit as fit_mod
    import selfpose.pose.labels as labels_mod
    import selfpose.pose.probe_fit as probe_mod

    splits, selections = [], []
    real_mask, real_fit, real_probes = labels_mod.holdout_mask, fit_mod.fit_pose, probe_mod.fit_probes

    def mask(takes, sequences, frame_ids, val_fraction=0.1, by="take", seed=0, subjects=None):
        m = real_mask(takes, sequences, frame_ids, val_fraction, by, seed, subjects)
        s = np.asarray(subjects).astype(str)
        splits.append({"by": by, "train": set(s[~m].tolist()), "val": set(s[m].tolist())})
        return m

    def fit(train, cfg, val=None, progress=True):
        selections.append(("head", set(train.subjects.tolist()), None if val is None else set(val.subjects.tolist())))
        return real_fit(train, cfg, val, progress=progress)

    def probes(train, cfg, val=None):
        selections.append(("probes", set(train.subjects.tolist()), None if val is None else set(val.subjects.tolist())))
        return real_probes(train, cfg, val)

    mp = pytest.MonkeyPatch()
    mp.setattr(labels_mod, "holdout_mask", mask)   # every split_validation (pose stage, supervised, analysis)
    mp.setattr(fit_mod, "fit_pose", fit)           # every MLP head's model selection
    mp.setattr(probe_mod, "fit_probes", probes)    # every probe's choice of alpha / k
    try:
        work = tmp_path_factory.mktemp("refs") / "work"
        res = run_benchmark(from_dict(BenchmarkConfig, BENCH), work, progress=False, log=lambda s: None)
    finally:
        mp.undo()
    return {"res": res, "work": work, "splits": splits, "selections": selections}


def test_every_reference_has_a_cell_at_every_share(bench):
    cells = bench["res"]["cells"]
    for ref in ("random", "random_same_crop", "supervised", "mean_pose", "box_camera_ridge", "box_camera_knn"):
        for share in ("0.5", "1"):
            c = cells[f"{ref}_s0_{share}"]
            assert c["name"] == ref and np.isfinite(c["n_mpjpe"]) and c["labelled"] > 0
    # frozen features carry the probes beside the head; the supervised net is trained end to end (no probes)
    for key in ("temporal_s0_0.5", "dsl_s0_1", "random_s0_1", "random_same_crop_s0_0.5"):
        assert all(np.isfinite(cells[key][f"{p}_n_mpjpe"]) for p in ("ridge", "knn"))
        assert cells[key]["knn_chosen"] in (3, 1)
    assert "ridge_n_mpjpe" not in cells["supervised_s0_1"]
    # the same-crop reference reads the trained detector's crop: its boxes are the full method's
    assert cells["random_same_crop_s0_1"]["box_iou"] == pytest.approx(cells["temporal_s0_1"]["box_iou"], abs=1e-6)
    assert (bench["work"] / "supervised" / "supervised_s0_1" / "supervised.json").is_file()


def test_no_test_or_training_subject_reaches_selection(bench):
    test_people = {"Q0", "Q1"}
    assert bench["splits"] and bench["selections"]
    for s in bench["splits"]:
        assert s["by"] == "subject" and s["val"] and s["train"]
        assert not s["val"] & s["train"] and not s["val"] & test_people
    kinds = {k for k, _, _ in bench["selections"]}
    assert kinds == {"head", "probes"}
    for kind, train, val in bench["selections"]:
        assert val, f"{kind} selected without held-out frames"
        assert not val & train, f"{kind}: a training subject's frames reached selection"
        assert not val & test_people, f"{kind}: a test subject's frames reached selection"
    for c in bench["res"]["cells"].values():
        if c.get("val_subjects") is not None:
            assert c["val_subjects"] and not set(c["val_subjects"]) & set(c["train_subjects"])
            assert not set(c["val_subjects"]) & test_people


def test_first_table_is_n_mpjpe_with_the_issue_rows_and_parses_back(bench):
    md = (bench["work"] / "results.md").read_text()
    first_table_heading = next(ln for ln in md.splitlines() if ln.startswith("**"))
    assert first_table_heading.startswith("**N-MPJPE (mm), lower is better**")
    t = read_table(md)
    assert t["shares"] == [0.5, 1.0]                                  # increasing, whatever the config order
    assert list(t["rows"]) == ROWS
    cells = bench["res"]["cells"]
    names = {"full method (DSL-STN-Dec-Split)": "temporal", "DSL": "dsl", "box + camera only (ridge)":
             "box_camera_ridge", "box + camera only (10-NN)": "box_camera_knn", "random encoder, same crop":
             "random_same_crop", "random encoder, its untrained detector's crop": "random",
             "supervised from scratch": "supervised", "mean pose": "mean_pose"}
    for label, name in names.items():
        for share, got in zip(("0.5", "1"), t["rows"][label]):
            assert got == pytest.approx(cells[f"{name}_s0_{share}"]["n_mpjpe"], abs=0.051)
    upper = cells["supervised_s0_1"]["n_mpjpe"]
    assert t["rows"]["supervised from scratch, 100% labels (upper bound)"] == [pytest.approx(upper, abs=0.051)] * 2
    probes = read_table(md, "N-MPJPE (mm) by probe")
    assert probes["rows"]["full method (DSL-STN-Dec-Split)"][1] == pytest.approx(cells["temporal_s0_0.5"]
                                                                                  ["ridge_n_mpjpe"], abs=0.051)
    assert "random encoder, same crop" in probes["rows"] and "mean pose" not in probes["rows"]
    assert "the untrained encoder reads the crop that full method (DSL-STN-Dec-Split)'s trained detector cuts" in md
    who = md[md.index("Who is filmed"):]
    assert who.index("| full method (DSL-STN-Dec-Split) |") < who.index("| DSL |")   # rows in table order
    people = bench["res"]["persons"]
    assert set(people) == {"temporal", "dsl", "random"}
    for p in people.values():
        for who in ("training_people", "test_people"):
            r = p[who]
            assert r["people"] == 2 and 0 <= r["v"] <= 1 and 0 < r["chance"] < 1
    assert people["temporal"]["test_people"]["i"] is not None and people["dsl"]["test_people"]["i"] is None


def test_cells_of_an_older_format_are_recomputed_never_mixed(bench, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(bench["work"], work)
    p = work / "cells" / "temporal_s0_0.5.json"
    old = json.loads(p.read_text())
    # as the previous selfpose wrote it: no probes, selection on held-out takes, no format number
    for k in [k for k in old if k.startswith(("ridge_", "knn_")) or k in ("version", "val_subjects")]:
        del old[k]
    old["made_with"]["pose"]["pose"]["val_by"] = "take"
    del old["made_with"]["pose"]["probes"]
    p.write_text(json.dumps(old))
    again = run_benchmark(from_dict(BenchmarkConfig, BENCH), work, progress=False, log=lambda s: None)
    assert again["computed"] == ["temporal_s0_0.5"]
    assert again["cells"]["temporal_s0_0.5"]["version"] == 2 and "ridge_n_mpjpe" in again["cells"]["temporal_s0_0.5"]
    # a cell of the current format made with other settings is still an error
    cur = json.loads(p.read_text())
    cur["made_with"]["pose"]["pose"]["val_by"] = "take"
    p.write_text(json.dumps(cur))
    with pytest.raises(BenchmarkError, match="differs in pose.pose.val_by"):
        run_benchmark(from_dict(BenchmarkConfig, BENCH), work, progress=False, log=lambda s: None)


def test_config_of_the_new_keys_is_strict():
    with pytest.raises(ConfigError, match="probes.*unknown config key 'probes.k'"):
        from_dict(BenchmarkConfig, {**BENCH, "probes": {"k": 3}})
    with pytest.raises(ConfigError, match="supervised.model is set by the benchmark"):
        from_dict(BenchmarkConfig, {**BENCH, "supervised": {"model": {}}})
    with pytest.raises(ConfigError, match="supervised.*unknown config key 'supervised.step'"):
        from_dict(BenchmarkConfig, {**BENCH, "supervised": {"step": 3}})
    with pytest.raises(ConfigError, match="same_crop_of 'dsl_stn' is not among methods"):
        from_dict(BenchmarkConfig, {**BENCH, "same_crop_of": "dsl_stn"})
    with pytest.raises(ConfigError, match="add it to all_seeds_for"):
        from_dict(BenchmarkConfig, {**BENCH, "seeds": [0, 1], "all_seeds_for": ["random"]})
    with pytest.raises(ConfigError, match="val_by"):
        from_dict(BenchmarkConfig, {**BENCH, "val_by": "frames"})
    assert from_dict(BenchmarkConfig, {**BENCH, "same_crop_of": "true_box", "methods": []}).same_crop_of == "true_box"
    default = from_dict(BenchmarkConfig, {})
    assert default.val_by == "subject" and "random_same_crop" in default.references
    assert default.crop_source() == "temporal"                      # the full method's crop when it is benchmarked
    assert from_dict(BenchmarkConfig, {"methods": ["dsl"]}).crop_source() == "true_box"


def test_random_encoder_on_the_true_box_runs_without_any_pretraining(bench, tmp_path):
    cfg = {**BENCH, "methods": [], "references": ["random_same_crop"], "shares": [1.0],
           "data": {"train_dir": str(bench["work"] / "data" / "train"), "test_dir": str(bench["work"] / "data" / "test")}}
    res = run_benchmark(from_dict(BenchmarkConfig, cfg), tmp_path / "work", progress=False, log=lambda s: None)
    c = res["cells"]["random_same_crop_s0_1"]
    assert res["same_crop_of"] == "true_box" and np.isfinite(c["n_mpjpe"]) and np.isfinite(c["knn_n_mpjpe"])
    assert c["box_iou"] == pytest.approx(1.0)                        # its boxes are the true ones
    assert "reads the crop of the true person box" in (tmp_path / "work" / "results.md").read_text()


def test_supervised_reference_is_the_full_methods_network_on_the_cells_labels_and_budget():
    from selfpose.bench.run import pretrain_config
    from selfpose.bench.supervised_ref import supervised_config

    cfg = from_dict(BenchmarkConfig, {**BENCH, "supervised": {"threads": 2}})
    s = supervised_config(cfg, 0.5, 0)
    full = pretrain_config(cfg, "temporal", 0).model
    assert s.model == full and s.model.detector and s.model.split          # the full method's network
    assert (s.fraction, s.seed, s.val_by) == (0.5, 0, "subject")
    assert s.steps == cfg.steps + cfg.pose_steps and s.threads == 2         # its budget: pretraining + pose head
    assert supervised_config(from_dict(BenchmarkConfig, BENCH), 1.0, 0).steps == 4


def test_the_test_people_must_be_new_and_selection_needs_two_training_people(tmp_path):
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    small = dict(scenario="lab", height=32, width=32, max_sequences=2, max_seconds=1, views=1)
    a = synthesize(SynthConfig(**small, num_subjects=2), tmp_path / "a", progress=False)
    one = synthesize(SynthConfig(**small, num_subjects=1, seed=3), tmp_path / "one", progress=False)
    with pytest.raises(BenchmarkError, match="in both the training and the test data"):
        check_people(a, a, "take")
    q = synthesize(SynthConfig(**small, num_subjects=1, subject_prefix="Q"), tmp_path / "q", progress=False)
    with pytest.raises(BenchmarkError, match="set val_by: take"):
        check_people(one, q, "subject")
    check_people(one, q, "take")
    check_people(a, q, "subject")


# -- the same-crop reference's features, on hand-made frames whose crops are known ---------------


class _Stub:
    """A crop source that reports a fixed box (θ) for every frame, as a trained detector would."""

    def __init__(self, theta, final: bool):
        self.theta, self.final, self.has_detector = theta, final, True

    def encode_for_pose(self, frames):
        theta = self.theta.expand(len(frames), 4)
        out = {"features": torch.zeros(len(frames), 1), "boxes": torch.zeros(len(frames), 4)}
        if self.final:
            out["encoded"] = {"theta": theta}
        else:
            out["theta"] = theta
        return out


def _white_square_frames():
    """Two 64×64 black frames with a white 16×16 square at x 24..40, y 16..32; its box in px and θ."""
    from selfpose.models.stn import box_px_to_theta

    frames = torch.zeros(2, 3, 64, 64)
    frames[:, :, 16:32, 24:40] = 1.0
    box = torch.tensor([[24.0, 16.0, 40.0, 32.0]])
    return frames, box, box_px_to_theta(box, 64, 64)


def _mean_colour_encoder():
    """A random temporal model whose 'encoder' is the crop's mean intensity: the feature says what was cropped."""
    from types import SimpleNamespace

    from selfpose.models.temporal import ModelConfig, TemporalModel

    model = TemporalModel(ModelConfig(image_size=64, crop_size=16, detector_input=16, detector_width=4,
                                      encoder_width=4, v_dim=4, i_dim=4, decoder=False, crop_margin=1.25))
    model.encode_crop = lambda crops: (crops.mean(dim=(1, 2, 3))[:, None], None)
    return SimpleNamespace(model=model)


def test_same_crop_reads_the_crop_the_source_cut_or_the_true_box():
    from selfpose.bench.same_crop import same_crop_feature_fn

    frames, box, theta = _white_square_frames()
    enc = _mean_colour_encoder()
    # the source's own crop (its encoded θ): exactly the white square
    got = same_crop_feature_fn(enc, _Stub(theta, final=True))(frames)
    np.testing.assert_allclose(got["features"].numpy(), 1.0, atol=1e-5)
    # a detector box only: cut as the encoder model cuts around a box, a square 1.25× its side
    # (16 px → 20 px: the square fills 256/400 of it)
    got = same_crop_feature_fn(enc, _Stub(theta, final=False))(frames)
    np.testing.assert_allclose(got["features"].numpy(), 256 / 400, atol=0.03)
    # the true box, passed with the frames: the same crop a perfect detector would cut
    got = same_crop_feature_fn(enc, None)(frames, box.expand(2, 4))
    np.testing.assert_allclose(got["features"].numpy(), 256 / 400, atol=0.03)
    np.testing.assert_array_equal(got["boxes"].numpy(), box.expand(2, 4).numpy())
    # whereas the whole frame holds 256/4096 white: the crop, not the frame, is what the feature reads
    full = enc.model.encode_crop(enc.model.crop(frames, torch.tensor([[1.0, 1.0, 0.0, 0.0]]).expand(2, 4)))[0]
    np.testing.assert_allclose(full.numpy(), 256 / 4096, atol=0.01)


def test_the_detector_shortcut_cuts_what_the_method_itself_cuts():
    """crop_theta_of reads a temporal method's detector alone: the same crop and boxes as its full encoding."""
    from selfpose.bench.run import pretrain_config
    from selfpose.bench.same_crop import crop_theta_of
    from selfpose.methods.registry import build

    torch.manual_seed(0)
    method = build("temporal", pretrain_config(from_dict(BenchmarkConfig, BENCH), "temporal", 0)).eval()
    frames = torch.rand(3, 3, 80, 96)                      # not the model's size: boxes come back in these pixels
    with torch.no_grad():
        theta, boxes, final = crop_theta_of(method, frames)
        full = method.encode_for_pose(frames)
    assert final
    torch.testing.assert_close(theta, full["encoded"]["theta"].float())
    torch.testing.assert_close(boxes, full["boxes"].float())


def test_supervised_on_the_true_box_is_a_cell_of_its_own_and_says_so(bench, tmp_path):
    data = {"train_dir": str(bench["work"] / "data" / "train"), "test_dir": str(bench["work"] / "data" / "test")}
    base = {**BENCH, "methods": [], "references": ["supervised"], "shares": [1.0], "data": data}
    work = tmp_path / "work"
    res = run_benchmark(from_dict(BenchmarkConfig, base), work, progress=False, log=lambda s: None)
    assert res["computed"] == ["supervised_s0_1"]
    assert "its detector learnt from the pose loss alone" in (work / "results.md").read_text()
    # the crop is part of the cell's fingerprint: the detector cell is never taken for a true-box one
    tb = {**base, "supervised": {**BENCH["supervised"], "crop": "true_box"}}
    cell = json.loads((work / "cells" / "supervised_s0_1.json").read_text())
    del cell["made_with"]["supervised"]["crop"]    # as written before the key existed
    (work / "cells" / "supervised_s0_1.json").write_text(json.dumps(cell))
    assert run_benchmark(from_dict(BenchmarkConfig, base), work, progress=False, log=lambda s: None)["computed"] == []
    res = run_benchmark(from_dict(BenchmarkConfig, tb), work, progress=False, log=lambda s: None)
    assert res["computed"] == ["supervised_s0_1"]
    with pytest.raises(BenchmarkError, match="differs in supervised.crop"):
        run_benchmark(from_dict(BenchmarkConfig, base), work, progress=False, log=lambda s: None)
    c = res["cells"]["supervised_s0_1"]
    assert np.isfinite(c["n_mpjpe"]) and c["box_iou"] == pytest.approx(1.0)   # it read the true boxes
    assert "reading the crop of the true person box" in (work / "results.md").read_text()


def test_compute_total_counts_the_supervised_upper_bound_once():
    """The 100% supervised cell is shown by the ``supervised_upper`` row (and by ``supervised`` at 100%): its
    seconds belong in the total exactly once, as do every run's pretraining and the rendering."""
    from selfpose.bench.report import cost_table

    cell = lambda name, share, s: {"name": name, "seed": 0, "share": share, "seconds": s}  # noqa: E731
    results = {"cells": {"temporal_s0_0.01": cell("temporal", 0.01, 60.0),
                         "supervised_s0_0.01": cell("supervised", 0.01, 120.0),
                         "supervised_s0_1": cell("supervised", 1.0, 600.0)},
               "pretrain_seconds": {"temporal_s0": 300.0}, "data_seconds": {"train": 120.0, "test": 0.0}}
    # 300 + 60 (temporal) + 600 (upper bound) + 120 (rendering) = 1080 s = 18 min
    assert "Total compute: 18 min" in cost_table(results, ["temporal", "supervised_upper"])
    # with the supervised row too: its 1% cell is added, its 100% cell not a second time (1200 s = 20 min)
    assert "Total compute: 20 min" in cost_table(results, ["temporal", "supervised", "supervised_upper"])



def test_compute_table_names_each_rows_pretraining_steps():
    """A row with its own ``row_steps`` shows them; the others the benchmark's ``steps``; references none."""
    from selfpose.bench.report import cost_table

    cell = lambda name: {"name": name, "seed": 0, "share": 0.1, "seconds": 10.0}  # noqa: E731
    results = {"cells": {f"{n}_s0_0.1": cell(n) for n in ("sync", "sync_groups", "mean_pose")},
               "pretrain_seconds": {"sync_s0": 500.0, "sync_groups_s0": 6400.0},
               "config": {"methods": ["sync", "sync_groups"], "steps": 8000, "row_steps": {"sync_groups": 16000}}}
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[2]
            for line in cost_table(results, ["sync", "sync_groups", "mean_pose"]).splitlines()
            if line.startswith("| ") and "box IoU" not in line}
    assert list(rows.values()) == ["8,000", "16,000", "—"]


def test_compute_counts_the_fine_tuning_cells_and_shows_scratch():
    """Fine-tuning cells cost time too: each row's per seed, scratch's own row (it has no frozen cell), the total."""
    from selfpose.bench.report import cost_table

    results = {"cells": {"sync_s0_0.1": {"name": "sync", "seed": 0, "share": 0.1, "seconds": 60.0}},
               "transfer": {f"{n}_finetune_s1_s0": {"name": n, "seed": 0, "protocol": "s1", "seconds": s}
                            for n, s in (("sync", 120.0), ("scratch", 180.0))},
               "pretrain_seconds": {"sync_s0": 240.0}, "config": {"methods": ["sync"], "steps": 8000}}
    text = cost_table(results, ["sync"])
    assert "| multi-view synchronisation (Jenni & Favaro) | — | 8,000 | 240 | 60 | 120 | 1 |" in text
    assert "| same network fine-tuned from scratch | — | — | — | — | 180 | 1 |" in text
    assert "Total compute: 10 min" in text        # 240 + 60 + 120 + 180 s


def test_persons_only_analysis_reads_the_people_without_the_kmeans_analysis(bench, tmp_path):
    cfg = {**BENCH, "methods": ["temporal"], "references": [], "shares": [1.0], "analysis": "persons",
           "data": {"train_dir": str(bench["work"] / "data" / "train"), "test_dir": str(bench["work"] / "data" / "test")}}
    res = run_benchmark(from_dict(BenchmarkConfig, cfg), tmp_path / "work", progress=False, log=lambda s: None)
    assert set(res["persons"]) == {"temporal"} and res["analysis"] == {}
    assert 0 <= res["persons"]["temporal"]["test_people"]["v"] <= 1
    assert not list((tmp_path / "work" / "cells").glob("analysis_*"))
    with pytest.raises(ConfigError, match="analysis"):
        from_dict(BenchmarkConfig, {**BENCH, "analysis": "kmeans"})


def test_the_device_reaches_every_stage_and_no_fingerprint(bench, tmp_path, monkeypatch):
    """``device`` goes to pretraining, the pose heads and the supervised reference; cells cached on one device
    serve a run on another (here ``auto``, the CPU on this machine: nothing is recomputed)."""
    from selfpose.bench.run import pose_fingerprint, pose_stage_config, pretrain_config
    from selfpose.bench.supervised_ref import supervised_config

    cfg = from_dict(BenchmarkConfig, {**BENCH, "device": "cuda:1"})
    assert pretrain_config(cfg, "temporal", 0).train.device == "cuda:1"
    assert pose_stage_config(cfg, 0.5, 0).pose.device == "cuda:1"
    assert "device" not in pose_fingerprint(pose_stage_config(cfg, 0.5, 0))["pose"]
    assert supervised_config(cfg, 1.0, 0).device == "cuda:1"
    with pytest.raises(ConfigError, match="device must be cpu, cuda, cuda:N or auto"):
        from_dict(BenchmarkConfig, {**BENCH, "device": "gpu"})

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    work = tmp_path / "work"
    shutil.copytree(bench["work"], work)
    with pytest.raises(ConfigError, match="^device=cuda:1 but this torch .* sees no CUDA GPU"):
        run_benchmark(cfg, work, progress=False, log=lambda s: None)
    again = run_benchmark(from_dict(BenchmarkConfig, {**BENCH, "device": "auto"}), work, progress=False,
                          log=lambda s: None)
    assert again["computed"] == [] and again["cells"].keys() == bench["res"]["cells"].keys()


def test_device_auto_computes_a_supervised_cell_and_a_missing_gpu_makes_no_folder(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = {"train_dir": str(bench["work"] / "data" / "train"), "test_dir": str(bench["work"] / "data" / "test")}
    cfg = {**BENCH, "methods": [], "references": ["supervised_upper"], "shares": [1.0], "data": data}
    with pytest.raises(ConfigError, match="^device=cuda but this torch"):
        run_benchmark(from_dict(BenchmarkConfig, {**cfg, "device": "cuda"}), tmp_path / "none", progress=False,
                      log=lambda s: None)
    assert not (tmp_path / "none").exists()
    res = run_benchmark(from_dict(BenchmarkConfig, {**cfg, "device": "auto"}), tmp_path / "work", progress=False,
                        log=lambda s: None)
    assert res["computed"] == ["supervised_s0_1"] and np.isfinite(res["cells"]["supervised_s0_1"]["n_mpjpe"])
