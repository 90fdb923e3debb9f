"""A folder of videos (+ optional 2D keypoint files) → store, streamed, atomic."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from selfpose.data.datasets import PrepareConfig, PrepareError, PrepareWarning, prepare
from selfpose.data.datasets.framing import FrameTransform
from selfpose.data.datasets.keypoints import load_keypoints
from selfpose.data.store import Dataset
from selfpose.data.video import VideoError
from selfpose.geometry.skeleton import to_h36m

W, H, T = 96, 64, 30


def write_clip(path, num_frames=T, width=W, height=H, fps=25):
    """Grey frames with a white square at x = 8 + 2·i in frame i."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            img = np.full((height, width, 3), 60, np.uint8)
            img[24:32, 8 + 2 * i:16 + 2 * i] = 255
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def coco_track(num_frames=T):
    """(T, 17, 3) COCO keypoints in source pixels: a fixed pose drifting right by 2 px per frame."""
    rng = np.random.default_rng(0)
    base = rng.uniform([20, 5], [60, 60], size=(17, 2))
    xy = base[None] + np.array([2.0, 0.0]) * np.arange(num_frames)[:, None, None]
    conf = np.full((num_frames, 17, 1), 0.9)
    return np.concatenate([xy, conf], axis=-1)


def no_leftovers(folder) -> bool:
    return not [p for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_real_folder_small_and_fast(shared_data, tmp_path):
    src = shared_data / "videos"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    cfg = PrepareConfig(size=32, step=8, background="median", background_min_frames=4)
    ds = Dataset.open(prepare("videos", src, tmp_path / "ds", cfg, progress=False))
    by_id = {r.id: r for r in ds}
    expect = {"hybrik_taiji": (52, 23.976 / 8, (32, 18)),  # frames, fps, letterboxed content size
              "mmaction2_ntu_S001C001P001R001A001_rgb": (13, 30 / 8, (32, 18)),
              "single_person_demo": (5, 12 / 8, (18, 32))}
    assert set(by_id) == set(expect)
    for sid, (n, fps, (w, h)) in expect.items():
        rec = by_id[sid]
        assert len(rec) == n and abs(rec.meta.fps - fps) < 1e-3
        assert rec["frames"].shape == (n, 32, 32, 3) and rec["frame_ids"][:3].tolist() == [0, 8, 16]
        assert rec.meta.attrs["letterbox"]["w"] == w and rec.meta.attrs["letterbox"]["h"] == h
        assert rec["background"].shape == (32, 32, 3) and rec.meta.scenario == "static"
        assert rec.meta.camera is None and rec.meta.subject == sid
    taiji = np.asarray(by_id["hybrik_taiji"]["frames"])
    assert taiji[:, :7].max() == 0 and taiji[:, 25:].max() == 0 and taiji[:, 7:25].std() > 10  # letterbox bars


def test_keypoints_npz_converted_to_house_order_and_stored_pixels(tmp_path):
    write_clip(tmp_path / "src" / "clip.avi")
    kp = coco_track()
    kp[4, 11, 2] = 0.0  # left hip undetected in frame 4: it and the joints derived from it are unknown
    np.savez(tmp_path / "src" / "clip.npz", keypoints=kp)
    ds = Dataset.open(prepare("videos", tmp_path / "src", tmp_path / "ds",
                              PrepareConfig(size=48, step=2, background="none"), progress=False))
    rec = ds.sequences[0]
    assert len(rec) == 15 and rec["frame_ids"].tolist() == list(range(0, 30, 2)) and rec.meta.fps == 12.5
    tf = FrameTransform.letterbox(W, H, 48)
    want, _ = to_h36m(kp[::2, :, :2], "coco17")
    got = np.asarray(rec["joints2d"])
    known = np.isfinite(got).all(-1)
    np.testing.assert_allclose(got[known], tf.points(want)[known], atol=1e-4)
    conf = np.asarray(rec["joints2d_conf"])
    # Frame 4 is stored frame 2: left hip (house 4), pelvis (0) and spine (7) unknown.
    assert np.flatnonzero(~known[2]).tolist() == [0, 4, 7] and (conf[2, [0, 4, 7]] == 0).all()
    assert known[[0, 1, 3]].all() and np.allclose(conf[known], 0.9)
    # The pelvis is the hips' midpoint; the right hip (house 1) is COCO's 12.
    np.testing.assert_allclose(got[0, 1], tf.points(kp[0, 12, :2]), atol=1e-4)
    assert rec.meta.attrs["keypoints_skeleton"] == "coco17"


def test_mediapipe_json_in_keypoint_folder(tmp_path):
    write_clip(tmp_path / "src" / "walk.avi", num_frames=10)
    rng = np.random.default_rng(1)
    frames = [rng.uniform(0.2, 0.8, size=(33, 4)).tolist() for _ in range(10)]
    frames[3] = None  # no detection
    (tmp_path / "kp").mkdir()
    (tmp_path / "kp" / "walk.json").write_text(json.dumps({"keypoints": frames, "normalized": True}))
    cfg = PrepareConfig(size=0, keypoints=str(tmp_path / "kp"), background="none")
    rec = Dataset.open(prepare("videos", tmp_path / "src", tmp_path / "ds", cfg, progress=False)).sequences[0]
    got = np.asarray(rec["joints2d"])
    assert np.isnan(got[3]).all() and (rec["joints2d_conf"][3] == 0).all()
    lhip = np.array(frames[0][23][:2]) * [W, H]  # MediaPipe 23 = left hip = house 4; size 0: source pixels
    np.testing.assert_allclose(got[0, 4], lhip, atol=1e-3)
    assert abs(rec["joints2d_conf"][0, 4] - frames[0][23][3]) < 1e-6
    assert rec.meta.attrs["keypoints_skeleton"] == "mediapipe33"


def test_keypoint_file_errors(tmp_path):
    write_clip(tmp_path / "src" / "clip.avi", num_frames=6)
    with pytest.raises(PrepareError, match="keypoint folder .*missing_dir not found"):
        prepare("videos", tmp_path / "src", tmp_path / "out", PrepareConfig(keypoints=str(tmp_path / "missing_dir")),
                progress=False)
    with pytest.raises(PrepareError, match="keypoint file .* not found"):
        load_keypoints(tmp_path / "nope.npz", W, H)
    bad = tmp_path / "bad.npz"
    np.savez(bad, keypoints=np.zeros((6, 20, 2)))
    with pytest.raises(PrepareError, match="bad.npz: 20 joints per frame"):
        load_keypoints(bad, W, H)
    np.savez(bad, keypoints=np.full((6, 17, 2), 0.5))
    with pytest.raises(PrepareError, match="look normalised"):
        load_keypoints(bad, W, H)
    (tmp_path / "src" / "clip.json").write_text("{not json")
    with pytest.raises(PrepareError, match="clip.json"):
        prepare("videos", tmp_path / "src", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path)


def test_short_keypoint_file_warns_and_leaves_frames_unknown(tmp_path):
    write_clip(tmp_path / "src" / "clip.avi", num_frames=12)
    np.savez(tmp_path / "src" / "clip.npz", keypoints=coco_track(8))
    with pytest.warns(PrepareWarning, match="8 keypoint rows for a video of 12 frames"):
        ds = Dataset.open(prepare("videos", tmp_path / "src", tmp_path / "ds", PrepareConfig(background="none"),
                                  progress=False))
    conf = ds.sequences[0]["joints2d_conf"]
    assert (conf[:8] > 0).all() and (conf[8:] == 0).all()


def test_corrupt_video_names_file_and_leaves_no_dataset(tmp_path):
    write_clip(tmp_path / "src" / "a_good.avi")
    (tmp_path / "src" / "broken.mp4").write_bytes(os.urandom(3000))
    with pytest.raises(VideoError, match="broken.mp4"):
        prepare("videos", tmp_path / "src", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path)
    # Truncated after the index: found only while decoding, after frames were written.
    (tmp_path / "src" / "broken.mp4").unlink()
    data = (tmp_path / "src" / "a_good.avi").read_bytes()
    (tmp_path / "src" / "b_cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="b_cut.avi.*truncated"):
        prepare("videos", tmp_path / "src", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path)


def test_nested_folders_give_subjects_and_background(tmp_path):
    write_clip(tmp_path / "src" / "diver1" / "take1.avi", num_frames=16)
    write_clip(tmp_path / "src" / "diver2" / "take1.avi", num_frames=16)
    (tmp_path / "src" / "notes.txt").write_text("not a video")
    ds = Dataset.open(prepare("videos", tmp_path / "src", tmp_path / "ds",
                              PrepareConfig(size=32, background="median"), progress=False))
    assert ds.subjects() == ["diver1", "diver2"] and sorted(r.id for r in ds) == ["diver1__take1", "diver2__take1"]
    bg = np.asarray(ds.sequences[0]["background"], np.float64)
    # The moving square covers any pixel in few frames: the median background is the grey floor.
    tf = FrameTransform.letterbox(W, H, 32)
    rows = slice(tf.py + 1, tf.py + tf.rh - 1)
    assert np.abs(bg[rows, 1:-1] - 60).max() < 12
    # Too few frames for a median without the person: no background rather than a wrong one.
    ds = Dataset.open(prepare("videos", tmp_path / "src" / "diver1", tmp_path / "short",
                              PrepareConfig(size=32, max_frames=5, background="median"), progress=False))
    assert len(ds.sequences[0]) == 5 and not ds.sequences[0].has("background")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="no video files"):
        prepare("videos", tmp_path / "empty", tmp_path / "x", progress=False)
