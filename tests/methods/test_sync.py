"""Multi-view synchronisation learning (selfpose.methods.sync): fusion, background handling, flips, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict, to_dict
from selfpose.methods.registry import build
from selfpose.methods.sync import (FUSIONS, SyncConfig, fuse, fused_dim, handle_background, joints_to_crop,
                                   mirror_joints2d, person_mask, square_theta)
from selfpose.pretrain import PretrainConfig

SMALL = dict(image_size=64, crop_size=32, encoder_width=8)


def config(**sync) -> PretrainConfig:
    return from_dict(PretrainConfig, {"method": "sync", "model": SMALL, "method_config": {"sync": sync}})


@pytest.mark.parametrize("how", FUSIONS)
def test_each_fusion_shape(how):
    fa, fb = torch.randn(5, 12), torch.randn(5, 12)
    z = fuse(fa, fb, how)
    assert z.shape == (5, fused_dim(12, how)) == ((5, 24) if how == "concat" else (5, 12))
    expect = {"product": fa * fb, "difference": fa - fb, "sum": fa + fb, "concat": torch.cat([fa, fb], 1)}[how]
    torch.testing.assert_close(z, expect)
    m = build("sync", config(fusion=how))
    assert m.heads["sync"][0].in_features == fused_dim(m.encoder.out_channels, how)


def test_fusion_and_config_errors():
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(torch.zeros(2, 3), torch.zeros(2, 3), "max")
    with pytest.raises(ValueError, match="one shape"):
        fuse(torch.zeros(2, 3), torch.zeros(2, 4), "sum")
    with pytest.raises(ConfigError, match="fusion"):
        config(fusion="max")
    with pytest.raises(ConfigError, match="tasks"):
        config(tasks=[])
    with pytest.raises(ConfigError, match="tasks"):
        config(tasks=["sync", "colour"])
    with pytest.raises(ConfigError, match="unknown"):
        config(fusoin="product")
    with pytest.raises(ConfigError, match="feature_norm"):
        config(feature_norm="layer")


def test_feature_norm_standardises_before_fusion_and_stays_off_the_pose_path():
    plain = build("sync", config())
    assert plain.feature_norm is None and not any(k.startswith("feature_norm") for k in plain.state_dict())
    m = build("sync", config(feature_norm="batch", box_jitter=0.0, colour_jitter=0.0))
    assert m.feature_norm in m.finetune_frozen()
    b = pair_batch()
    m.train()
    seen = {}
    m.feature_norm.register_forward_hook(lambda mod, args, out: seen.update(inp=args[0], out=out))
    m.pair_logits(b)
    out = seen["out"]     # (2N, C): both images of every pair, standardised with one set of statistics
    assert out.shape == (2 * len(b["frames"]), m.encoder.out_channels)
    # channels a dead ReLU leaves (nearly) constant cannot reach unit spread (batch norm's eps): not checked
    live = seen["inp"].var(0, unbiased=False) > 1e-3
    assert live.any()
    torch.testing.assert_close(out.mean(0), torch.zeros_like(out.mean(0)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False)[live], torch.ones(int(live.sum())), atol=1e-2, rtol=0)
    # the pose stage reads the encoder's pooled feature, not the normalised one
    frames = b["frames"][:, 0]
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(8, 4)
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m.encode_for_pose(frames, boxes)["features"],
                                   m.encoder.pooled(m._crops(frames.float() / 255, boxes, 0.0)).float())


def _scene(n=2, seed=0):
    """Frames in [0, 1]: a textured background with a red 'person' block; the background alone."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(n, 3, 64, 64, generator=g) * 0.6
    frames = bg.clone()
    frames[:, :, 16:48, 24:36] = torch.tensor([0.95, 0.1, 0.1])[:, None, None]
    return frames, bg


def test_background_handling():
    frames, bg = _scene()
    m = person_mask(frames, bg, 0.1)
    assert m[:, 0, 16:48, 24:36].min() == 1 and m[:, 0, :, :20].max() == 0
    assert handle_background(frames, bg, "keep", 0.1) is frames
    masked = handle_background(frames, bg, "mask", 0.1)
    torch.testing.assert_close(masked[:, :, 16:48, 24:36], frames[:, :, 16:48, 24:36])   # the person stays
    assert torch.all(masked[:, :, :, :20] == 0.5)                                         # the background is grey
    sub = handle_background(frames, bg, "subtract", 0.1)
    assert torch.allclose(sub[:, :, :, :20], torch.full_like(sub[:, :, :, :20], 0.5))
    other = torch.zeros_like(bg)
    rep = handle_background(frames, bg, "replace", 0.1, other)
    assert torch.all(rep[:, :, :, :20] == 0) and torch.equal(rep[:, :, 16:48, 24:36], frames[:, :, 16:48, 24:36])
    with pytest.raises(Exception, match="estimated background"):
        handle_background(frames, None, "mask", 0.1)


def test_mirrored_labels_follow_the_mirrored_image():
    """A dot drawn at each joint of an image lands, once the image is mirrored, where mirror_joints2d puts the
    joint's flip partner (left/right swap meaning)."""
    from selfpose.geometry.skeleton import H36M17

    rng = np.random.default_rng(0)
    W = 40
    j = torch.tensor(rng.choice(W * W, 17, replace=False), dtype=torch.float32)
    joints = torch.stack([j % W, j // W], dim=1)                        # distinct integer pixels (x, y)
    mirrored = mirror_joints2d(joints, W)
    for k in range(17):
        img = torch.zeros(W, W)
        img[int(joints[k, 1]), int(joints[k, 0])] = 1
        y, x = (img.flip(-1) == 1).nonzero()[0].tolist()
        partner = int(H36M17.flip_permutation()[k])                    # joint k's dot now stands for its partner
        assert (x, y) == (int(mirrored[partner, 0]), int(mirrored[partner, 1]))
    torch.testing.assert_close(mirror_joints2d(mirrored, W), joints)  # twice is the identity


def test_joints_land_in_the_crop_where_the_crop_shows_them():
    from selfpose.models.stn import crop

    img = torch.zeros(1, 1, 64, 80)
    pts = torch.tensor([[[30.0, 20.0], [45.0, 40.0]]])
    for x, y in pts[0].tolist():
        img[0, 0, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 1
    th = square_theta(torch.tensor([[25.0, 10.0, 55.0, 50.0]]), 80, 64, 1.25)
    c = crop(img, th, 64)[0, 0]
    where = joints_to_crop(pts, th, W=80, H=64, size=64)[0]
    for x, y in where.tolist():
        yy, xx = int(round(y)), int(round(x))
        assert c[yy - 1:yy + 2, xx - 1:xx + 2].max() > 0.5       # the blob is at the mapped pixel


def pair_batch(n=8, seed=0):
    """Pairs of 'views' of a moving block: synchronised pairs show the block at the same height, unsynchronised
    ones at heights further apart; half the synchronised pairs are flipped; every frame over its own background."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.zeros(n, 2, 3, 64, 64, dtype=torch.uint8)
    bg = (torch.rand(n, 2, 3, 64, 64, generator=g) * 120).to(torch.uint8)
    frames[:] = bg
    sync = torch.arange(n) % 2 == 0
    flip = sync & (torch.arange(n) % 4 == 0)
    for i in range(n):
        t = [i * 3, i * 3 if sync[i] else i * 3 + 17]
        for k in range(2):
            y = 8 + t[k] % 30
            frames[i, k, :, y:y + 20, 20:30] = torch.tensor([230, 40, 40], dtype=torch.uint8)[:, None, None]
            frames[i, k, :, y:y + 6, 30:36] = torch.tensor([40, 230, 40], dtype=torch.uint8)[:, None, None]  # an arm
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(n, 2, 4).contiguous()
    return {"frames": frames, "background": bg, "boxes": boxes, "sync": sync, "flip": flip,
            "dt": torch.where(sync, 0, 17)}


def test_flipped_second_image_is_the_mirror():
    m = build("sync", config(background="keep"))
    m.eval()
    b = pair_batch()
    imgs = m.pair_images(b)
    plain = m.pair_images({**b, "flip": torch.zeros_like(b["flip"])})
    f = b["flip"]
    torch.testing.assert_close(imgs["second"][f], plain["second"][f].flip(-1))
    torch.testing.assert_close(imgs["second"][~f], plain["second"][~f])
    torch.testing.assert_close(imgs["first"], plain["first"])
    # with 2D labels, the flipped image's labels are mirrored with it
    j = torch.rand(8, 2, 17, 2) * 30 + 15
    imgs = m.pair_images({**b, "joints2d": j})
    plain = m.pair_images({**b, "flip": torch.zeros_like(f), "joints2d": j})
    torch.testing.assert_close(imgs["joints2d"][f, 1], mirror_joints2d(plain["joints2d"][f, 1], 32))


def test_replaced_background_is_never_mirrored():
    """``replace``: only the person of a flipped image is mirrored, its new background reads the right way round
    (a mirrored room told the flip head the answer, as a kept background does)."""
    m = build("sync", config(background="replace", box_jitter=0.0, colour_jitter=0.0))
    m.eval()
    b = pair_batch()
    ramp = torch.linspace(0, 120, 64).to(torch.uint8)            # a room darker on the left than on the right
    bg = ramp.expand(*b["background"].shape).clone()
    frames = bg.clone()
    frames[..., 20:44, 26:38] = 240                               # the person: differs from the background
    for one in (b, {k: v[:1] for k, v in b.items()}):             # a batch, and one (flipped) pair alone
        n = len(one["flip"])
        imgs = m.pair_images({**one, "frames": frames[:n], "background": bg[:n]})
        for key in ("first", "second"):
            left, right = imgs[key][..., :, :4].mean((1, 2, 3)), imgs[key][..., :, -4:].mean((1, 2, 3))
            assert torch.all(right > left + 0.2), (key, left, right)
    assert b["flip"][0] and b["flip"].any() and not b["flip"].all()
    # the person itself is mirrored with its image: its block sits right of the crop's centre, mirrored left
    imgs = m.pair_images({**b, "frames": frames, "background": bg})
    bright = (imgs["second"].mean(1) > 0.9).float().mean(1)      # (N, c): the person's columns
    cols = torch.arange(bright.shape[-1]).float()
    centre = (bright * cols).sum(-1) / bright.sum(-1)
    mid = (bright.shape[-1] - 1) / 2
    side = torch.sign(centre - mid)
    assert torch.all(side[~b["flip"]] == 1) and torch.all(side[b["flip"]] == -1)


def test_replaced_background_is_the_same_on_every_call_in_eval_mode():
    """A held-out score (``evaluate RUN``) must not depend on the global RNG; training still draws which pair's
    background each image gets."""
    m = build("sync", config(background="replace", box_jitter=0.0, colour_jitter=0.0))
    batch = pair_batch()                                          # each frame over its own random background
    assert len(batch["flip"]) >= 3                                # several other pairs to draw from
    m.eval()
    first = m.pair_images(batch)["first"]
    torch.manual_seed(123)
    assert torch.equal(m.pair_images(batch)["first"], first)
    m.train()
    seen = set()
    for seed in range(8):                                         # which image got which background
        torch.manual_seed(seed)
        seen.add(tuple(m.pair_images(batch)["first"].float().sum((1, 2, 3)).round().tolist()))
    assert len(seen) > 1


def test_rows_pool_the_map_into_horizontal_bands_for_the_heads_only():
    m = build("sync", from_dict(PretrainConfig, {"method": "sync", "model": {**SMALL, "crop_size": 64},
                                                 "method_config": {"sync": {"rows": 2, "feature_norm": "batch"}}}))
    C = m.encoder.out_channels
    assert m.heads["sync"][0].in_features == 2 * C and m.feature_norm.num_features == 2 * C
    m.eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        fmap = m.encoder.features(x)[-1]                      # (3, C, 2, 2)
        f = m.pair_features(x)
    assert fmap.shape[-2:] == (2, 2) and f.shape == (3, 2 * C)
    torch.testing.assert_close(f[:, :C], fmap[:, :, 0].mean(-1))     # the top band first
    torch.testing.assert_close(f[:, C:], fmap[:, :, 1].mean(-1))
    # the pose stage still reads the globally pooled feature
    assert m.feature_dim == C
    assert m.pair_logits(pair_batch())[0]["sync"].shape == (len(pair_batch()["frames"]),)
    with pytest.raises(ConfigError, match="exceeds the height"):
        build("sync", config(rows=2))                          # 32-px crops: a 1-row map
    # crop: full resizes the frame to crop_size too: a 128-px frame at 32 px still has a 1-row map
    with pytest.raises(ConfigError, match="exceeds the height"):
        build("sync", from_dict(PretrainConfig, {"method": "sync", "model": {**SMALL, "image_size": 128},
                                                 "method_config": {"sync": {"rows": 2, "crop": "full"}}}))
    # 48 px: the map is 2 high (ceil(48 / 32)), so two bands are two different rows
    m48 = build("sync", from_dict(PretrainConfig, {"method": "sync", "model": {**SMALL, "crop_size": 48},
                                                   "method_config": {"sync": {"rows": 2}}}))
    with torch.no_grad():
        assert m48.encoder.features(torch.rand(1, 3, 48, 48))[-1].shape[-2] == 2
    for bad in (0, True, 1.5):
        with pytest.raises(ConfigError, match="rows"):
            config(rows=bad)


def test_pose_rows_read_the_bands_without_changing_a_weight():
    base = {"method": "sync", "model": {**SMALL, "crop_size": 64}, "method_config": {"sync": {"rows": 2}}}
    m = build("sync", from_dict(PretrainConfig, base))
    b2 = from_dict(PretrainConfig, {**base, "method_config": {"sync": {"rows": 2, "pose_rows": 2}}})
    m2 = build("sync", b2)
    m2.load_state_dict(m.state_dict())                 # the same weights read either way (strict: no new ones)
    C = m.encoder.out_channels
    assert m.feature_dim == C and m2.feature_dim == 2 * C
    frames = (torch.rand(3, 3, 64, 64) * 255).to(torch.uint8)
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(3, 4)
    m.eval(), m2.eval()
    with torch.no_grad():
        f1, f2 = m.pose_features(frames, boxes), m2.pose_features(frames, boxes)
        crops = m._crops(frames.float() / 255, boxes, 0.0)
        torch.testing.assert_close(f2, m.pair_features(crops).float())   # the bands the heads read
    assert f1.shape == (3, C) and f2.shape == (3, 2 * C)
    torch.testing.assert_close((f2[:, :C] + f2[:, C:]) / 2, f1)          # two equal bands average to the global pool
    with pytest.raises(ConfigError, match="pose_rows"):
        build("sync", config(pose_rows=2))                                 # 32-px crops: a 1-row map
    with pytest.raises(ConfigError, match="pose_rows"):
        config(pose_rows=0)


def train_on(m, batch, steps: int = 40) -> tuple[float, dict]:
    """Adam on one fixed batch: the first step's loss and the last step's logs."""
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    first = None
    for step in range(steps):
        loss, logs = m.training_step(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else logs["loss"]
    return first, logs


@pytest.mark.parametrize("tasks,norm", [(("sync", "flip"), "none"), (("sync",), "none"), (("flip",), "none"),
                                        (("sync", "flip"), "batch")])
def test_loss_goes_down_on_a_fixed_batch(tasks, norm):
    torch.manual_seed(0)
    m = build("sync", config(tasks=list(tasks), box_jitter=0.0, colour_jitter=0.0, feature_norm=norm))
    first, logs = train_on(m, pair_batch())
    assert set(k for k in logs if k.endswith("_loss")) == {f"{t}_loss" for t in tasks}
    assert logs["loss"] < 0.5 * first
    if "flip" in tasks:   # scored on synchronised pairs only
        assert "flip_acc" in logs


def group_batch(n=4, M=4, seed=0):
    """Groups of M instants of the moving block in two 'views' (the second view a recoloured copy): frames
    ``(n, 2M, ...)``, the diagonal synchronised, view-b images flipped at random."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.zeros(n, 2 * M, 3, 64, 64, dtype=torch.uint8)
    bg = (torch.rand(n, 2 * M, 3, 64, 64, generator=g) * 120).to(torch.uint8)
    frames[:] = bg
    t = torch.stack([torch.randperm(30, generator=g)[:M] for _ in range(n)])   # distinct heights per item
    for i in range(n):
        for k in range(2 * M):
            y = 8 + int(t[i, k % M])
            colour = [230, 40, 40] if k < M else [40, 40, 230]
            frames[i, k, :, y:y + 20, 20:30] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
            frames[i, k, :, y:y + 6, 30:36] = torch.tensor([40, 230, 40], dtype=torch.uint8)[:, None, None]
    dt = (t[:, None, :] - t[:, :, None]) * 3
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(n, 2 * M, 4).contiguous()
    return {"frames": frames, "background": bg, "boxes": boxes, "sync": dt == 0,
            "flip": torch.rand(n, M, generator=g) < 0.5, "dt": dt}


def group_config(M=4, **sync) -> PretrainConfig:
    return from_dict(PretrainConfig, {"method": "sync", "model": SMALL, "sampler": {"sync_instants": M},
                                      "method_config": {"sync": sync}})


def test_groups_score_every_pair_of_instants():
    """``sampler.sync_instants`` = M: the sync head scores all M × M pairs, each the pair network's own logit."""
    torch.manual_seed(0)
    m = build("sync", group_config(background="keep", box_jitter=0.0, colour_jitter=0.0))
    m.eval()
    b = group_batch()
    logits, targets = m.group_logits(b)
    assert logits["sync"].shape == targets["sync"].shape == (4, 4, 4) and logits["flip"].shape == (4, 4)
    assert torch.equal(targets["sync"], b["sync"]) and torch.equal(targets["flip"], b["flip"])
    # entry (i, j) is what the pair network says of (view a at i, view b at j): the same as a batch of those pairs
    n, i, j = 2, 1, 3
    pair = {"frames": b["frames"][n:n + 1, [i, 4 + j]], "background": b["background"][n:n + 1, [i, 4 + j]],
            "boxes": b["boxes"][n:n + 1, [i, 4 + j]], "sync": torch.tensor([False]),
            "flip": b["flip"][n:n + 1, j]}
    pl, _ = m.pair_logits(pair)
    torch.testing.assert_close(pl["sync"][0], logits["sync"][n, i, j], atol=1e-4, rtol=1e-4)
    # balanced loss: the synchronised and unsynchronised pairs weigh equally, however many of each
    z = torch.zeros(4, 4, 4)
    z[b["sync"]] = 5.0   # right on every positive, undecided on the negatives
    loss = m.group_losses({"sync": z}, {"sync": b["sync"]})["sync"]
    expect = 0.5 * (torch.nn.functional.softplus(torch.tensor(-5.0)) + torch.log(torch.tensor(2.0)))
    torch.testing.assert_close(loss, expect)
    with pytest.raises(ConfigError, match="sync_instants"):
        build("sync", group_config(background="replace"))
    with pytest.raises(ConfigError, match="sync_instants must be an integer >= 1"):
        group_config(M=0)


def test_group_loss_goes_down_and_pictures_read_groups():
    torch.manual_seed(0)
    m = build("sync", group_config(box_jitter=0.0, colour_jitter=0.0, feature_norm="batch"))
    b = group_batch()
    first, logs = train_on(m, b)
    assert {"sync_loss", "flip_loss", "sync_acc", "flip_acc"} <= set(logs)
    assert logs["loss"] < 0.5 * first
    pic = m.pictures(b)["pairs"]
    assert pic.ndim == 3 and pic.shape[2] == 3
    with pytest.raises(Exception, match="groups of 4 instants"):
        m.training_step(pair_batch(), 0)


def test_pose_background_reads_crops_as_pretrained():
    """``pose_background: as_pretrained``: the pose stage's frames go through ``pose_input`` with their estimated
    background, which masks (or subtracts) it as pretraining did; the same weights either way."""
    from selfpose.pose.stage import pose_feature_fn

    plain = build("sync", config())
    m = build("sync", config(pose_background="as_pretrained"))
    m.load_state_dict(plain.state_dict())              # reading only: no weight added or changed
    assert not plain.reads_background and m.reads_background
    frames, bg = _scene(4)
    torch.testing.assert_close(m.pose_input(frames, bg), handle_background(frames, bg, "mask", 0.1))
    assert plain.pose_input(frames, bg) is frames
    sub = build("sync", config(pose_background="as_pretrained", background="subtract"))
    torch.testing.assert_close(sub.pose_input(frames, bg), handle_background(frames, bg, "subtract", 0.1))
    for how in ("keep", "replace"):   # nothing to remove (keep) or nothing to paste at test time (replace)
        other = build("sync", config(pose_background="as_pretrained", background=how))
        assert not other.reads_background and other.pose_input(frames, bg) is frames
    boxes = torch.tensor([20.0, 12.0, 40.0, 52.0]).expand(4, 4)
    m.eval()
    fn = pose_feature_fn(m)
    assert fn.reads_background and not pose_feature_fn(plain).reads_background
    with torch.no_grad():
        got = fn(frames, boxes, background=bg)["features"]
        want = m.encode_for_pose(handle_background(frames, bg, "mask", 0.1), boxes)["features"]
        raw = m.encode_for_pose(frames, boxes)["features"]
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, raw)                # the textured background did reach the raw reading
    with pytest.raises(ConfigError, match="pose_background"):
        config(pose_background="mask")


def test_pose_features_read_the_box():
    m = build("sync", config())
    m.eval()
    assert m.reads_boxes and m.batch_labels(1) == ["boxes", "background"]
    frames = pair_batch()["frames"][:, 0]
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(8, 4)
    with torch.no_grad():
        f = m.encode_for_pose(frames, boxes)["features"]
        assert f.shape == (8, m.feature_dim)
        with pytest.raises(Exception, match="person box"):
            m.encode_for_pose(frames)
    full = build("sync", config(crop="full", background="keep"))
    assert not full.reads_boxes and full.batch_labels(1) == []
    assert full.encode_for_pose(frames)["features"].shape == (8, full.feature_dim)


def test_pretrain_fit_pose_evaluate_end_to_end(tmp_path):
    """pretrain method=sync → fit-pose (frozen, and fine-tuned) → evaluate, through the real sampler and loop."""
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.pose.stage import PoseStageConfig, evaluate_pose_stage, fit_pose_stage
    from selfpose.pretrain import load_run, pretrain

    data = synthesize(SynthConfig(scenario="lab", height=64, width=64, max_sequences=4, max_seconds=4,
                                  num_subjects=2), tmp_path / "lab", progress=False)
    cfg = from_dict(PretrainConfig, {"method": "sync", "model": SMALL, "sampler": {"sync_max_offset_s": 1.0},
                                     "train": {"steps": 12, "batch_size": 4, "checkpoint_every": 12,
                                               "picture_every": 12, "num_workers": 0, "threads": 1}})
    pretrain(cfg, data, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert run.config.method == "sync" and run.method.sampler_kind(1) == "sync"
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"sync_loss", "flip_loss", "sync_acc"} <= set(header)
    assert list((tmp_path / "run" / "pictures").glob("*pairs.png"))
    _pretext_evaluation(tmp_path / "run", data, tmp_path)
    for finetune in (False, True):
        pose_cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 10},
                                               "finetune": {"enabled": finetune, "steps": 6, "eval_every": 3,
                                                            "batch_size": 4}})
        out = tmp_path / f"pose_{finetune}"
        fit = fit_pose_stage(tmp_path / "run", data, out, pose_cfg, progress=False)
        assert fit["num_labelled"] > 0 and bool(fit.get("finetune")) == finetune
        res = evaluate_pose_stage(out, data, progress=False)
        frames = sum(len(r) for r in Dataset.open(data).sequences)
        assert np.isfinite(res["overall"]["mpjpe"]) and res["overall"]["count"] == frames
        # the frozen stage keeps the run's weights; fine-tuning keeps its own, changed ones
        assert (fit["encoder"]["sha256"] == run.weights_sha256) == (not finetune)
    # init_from: a second run starts from the first one's weights (renders first, own footage next)
    from selfpose.pretrain import _build_initialised, initial_weights

    cfg2 = from_dict(PretrainConfig, {**to_dict(cfg), "init_from": str(tmp_path / "run"),
                                      "train": {**to_dict(cfg)["train"], "steps": 2, "seed": 5}})
    started = _build_initialised(cfg2, False, initial_weights(cfg2))
    for k, v in run.method.state_dict().items():
        torch.testing.assert_close(started.state_dict()[k], v)
    pretrain(cfg2, data, tmp_path / "run2", progress=False)
    assert load_run(tmp_path / "run2").config.init_from == str(tmp_path / "run")
    with pytest.raises(ConfigError, match="do not fit"):
        initial_weights(from_dict(PretrainConfig, {**to_dict(cfg2), "model": {**SMALL, "encoder_width": 16}}))
    with pytest.raises(ConfigError, match="is a 'sync' run"):
        initial_weights(from_dict(PretrainConfig, {"method": "temporal", "init_from": str(tmp_path / "run")}))


def _pretext_evaluation(run_dir, data, tmp_path):
    """``evaluate RUN`` of a sync run: its heads' accuracy on pairs drawn as it trained, files and one-line errors
    (part of the end-to-end test: it reuses its run)."""
    import json

    from typer.testing import CliRunner

    from selfpose.cli import app
    from selfpose.data.store import Dataset
    from selfpose.methods.sync_eval import PretextError, evaluate_pretext

    res = evaluate_pretext(run_dir, data, pairs=64, frames=(0, 30))
    assert res["pairs"] == 64 and res["step"] == 12 and res["frames"] == [0, 30]
    assert res["sampler"]["max_offset_s"] == 1.0                      # the run's own offsets
    for t in ("sync", "flip"):
        lo, hi = res[t]["ci95"]
        assert 0 <= lo <= res[t]["accuracy"] <= hi <= 1 and res[t]["chance"] == 0.5
    assert res["sync"]["scored"] == 64 and 0 < res["flip"]["scored"] < 64   # flips are scored on synchronised pairs
    out = run_dir / "pretext"
    assert json.loads((out / "pretext.json").read_text())["pairs"] == 64
    assert "| sync (every pair) |" in (out / "pretext.md").read_text()
    assert any((out / f"pairs_{w}.png").is_file() for w in ("correct", "wrong"))
    # the frame block is respected: every first image's instant lies in it
    from selfpose.methods.sync_eval import pretext_scores
    from selfpose.pretrain import load_run

    s = pretext_scores(load_run(run_dir).method, Dataset.open(data), num_pairs=32,
                       sampler_kwargs={"max_offset_s": 1.0, "frame_range": (0, 30)})
    assert all(0 <= int(c.split("@")[1]) < 30 for c in s["cluster"])

    runner = CliRunner()
    r = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(data), "--pairs", "32", "--out",
                            str(tmp_path / "pretext_cli")])
    assert r.exit_code == 0, r.output
    assert "32 pairs: sync " in r.output and "(chance 50%)" in r.output
    assert (tmp_path / "pretext_cli" / "pretext.json").is_file()
    for args, message in ((["--frames", "30"], "FIRST:STOP"), (["--out", str(data)], "is a selfpose dataset folder"),
                          (["--noise"], "apply to lifter runs"), (["--subjects", "nobody"], "has subjects")):
        r = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(data), *args])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (args, r.output)
    with pytest.raises(PretextError, match="not a pretraining run"):
        evaluate_pretext(tmp_path, data)
