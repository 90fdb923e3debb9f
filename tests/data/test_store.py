import json
import pickle

import numpy as np
import pytest

from selfpose.data.sequence import SequenceMeta, safe_id
from selfpose.data.store import Dataset, DatasetError, DatasetWriter
from selfpose.errors import OutputError
from selfpose.geometry.camera import Camera


def _meta(i=0, T=0, H=8, W=6):
    return SequenceMeta(f"s{i}", f"S{i}", "walk", f"take{i}", "c0", 25.0, T, H, W, Camera.from_fov(W, H, 50))


def test_streamed_write_reads_back_memory_mapped(tmp_path):
    with DatasetWriter(tmp_path / "ds", attrs={"kind": "test"}) as w:
        sw = w.add_sequence(_meta())
        for i in range(3):  # three chunks of 4 frames, frame value = frame index
            idx = np.arange(4 * i, 4 * i + 4)
            sw.append(frames=np.broadcast_to(idx[:, None, None, None], (4, 8, 6, 3)).astype(np.uint8),
                      joints3d=np.tile(idx[:, None, None], (1, 17, 3)).astype(np.float32))
        sw.set(background=np.full((8, 6, 3), 7, np.uint8))
    ds = Dataset.open(tmp_path / "ds")
    rec = ds.sequences[0]
    assert ds.attrs == {"kind": "test"} and len(rec) == 12
    assert isinstance(rec["frames"], np.memmap)
    assert rec["frames"][9, 0, 0, 0] == 9 and rec["joints3d"][11, 5, 2] == 11
    assert rec["frame_ids"].tolist() == list(range(12))
    assert sorted(rec.arrays) == ["background", "frame_ids", "frames", "joints3d"]
    assert rec.meta.camera.width == 6
    # Records travel to worker processes without their memory maps.
    clone = pickle.loads(pickle.dumps(rec))
    assert clone._maps == {} and clone["frames"][3, 1, 1, 2] == 3


def test_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "ds") as w:
            w.write_sequence(_meta(T=2), frames=np.zeros((2, 8, 6, 3), np.uint8))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "ds")


def test_existing_folder_needs_overwrite(tmp_path):
    for _ in range(2):
        with DatasetWriter(tmp_path / "ds", overwrite=True) as w:
            w.write_sequence(_meta(T=1), frames=np.zeros((1, 8, 6, 3), np.uint8))
    with pytest.raises(OutputError, match="--overwrite"):
        DatasetWriter(tmp_path / "ds")
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_shape_and_dtype_checks(tmp_path):
    with pytest.raises(DatasetError), DatasetWriter(tmp_path / "ds") as w:
        sw = w.add_sequence(_meta(T=2))
        with pytest.raises(ValueError, match="frames must have shape"):
            sw.append(frames=np.zeros((2, 7, 6, 3), np.uint8))
        with pytest.raises(TypeError, match="uint8"):
            sw.append(frames=np.zeros((2, 8, 6, 3), np.float32))
        with pytest.raises(KeyError, match="unknown sequence array"):
            sw.set(foo=np.zeros(3))
        sw.append(frames=np.zeros((2, 8, 6, 3), np.uint8), masks=np.zeros((1, 8, 6), np.uint8))
        with pytest.raises(DatasetError, match="different lengths"):
            sw.close()
    # The inconsistent sequence made the whole write fail, leaving nothing.
    assert list(tmp_path.iterdir()) == []


def test_not_a_dataset_and_corrupt_index(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="interrupted write"):
        Dataset.open(tmp_path / "x")
    (tmp_path / "x" / "index.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        Dataset.open(tmp_path / "x")
    (tmp_path / "x" / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DatasetError, match="not a"):
        Dataset.open(tmp_path / "x")


def test_select_and_takes(tmp_path):
    with DatasetWriter(tmp_path / "ds") as w:
        for i in range(3):
            w.write_sequence(_meta(i, T=2), frames=np.zeros((2, 8, 6, 3), np.uint8))
    ds = Dataset.open(tmp_path / "ds")
    assert ds.subjects() == ["S0", "S1", "S2"] and ds.num_frames == 6
    assert [s.id for s in ds.select(subjects={"S1"})] == ["s1"]
    assert set(ds.takes()) == {"take0", "take1", "take2"}
    with pytest.raises(KeyError, match="has no 'masks'"):
        ds.sequences[0]["masks"]


def test_safe_id():
    assert safe_id("S1/walking 1", "cam/0") == "S1_walking_1__cam_0"


def test_with_looks_keeps_each_subjects_first_rendered_identities(tmp_path):
    looks = {"S0": ["S0~0#0", "S0~1#0", "S0~10#0", "S0~2#0"], "S1": ["S1~0#0"]}
    with DatasetWriter(tmp_path / "ds") as w:
        i = 0
        for subject, names in looks.items():
            for name in names:
                for view in ("c0", "c1"):   # both views of a take share its look
                    meta = SequenceMeta(f"s{i}_{view}", subject, "walk", f"take{i}", view, 25.0, 2, 8, 6,
                                        Camera.from_fov(6, 8, 50), attrs={"identity": name})
                    w.write_sequence(meta, frames=np.zeros((2, 8, 6, 3), np.uint8))
                i += 1
    ds = Dataset.open(tmp_path / "ds")
    kept = lambda n: sorted({s.meta.attrs["identity"] for s in ds.with_looks(n)})  # noqa: E731
    assert kept(1) == ["S0~0#0", "S1~0#0"]                                  # per subject, not overall
    assert kept(3) == ["S0~0#0", "S0~1#0", "S0~2#0", "S1~0#0"]              # natural order: ~10 after ~2
    assert len(ds.with_looks(1)) == 4 and ds.with_looks(None) is ds and len(ds.with_looks(9)) == len(ds)
    with pytest.raises(DatasetError, match=">= 1"):
        ds.with_looks(0)
    with DatasetWriter(tmp_path / "shared") as w:   # one identity name under two subjects: kept per subject
        for i, (subject, name) in enumerate((("A", "x~0"), ("A", "x~1"), ("B", "x~1"), ("B", "x~2"))):
            w.write_sequence(SequenceMeta(f"q{i}", subject, "walk", f"t{i}", "c0", 25.0, 2, 8, 6,
                                          Camera.from_fov(6, 8, 50), attrs={"identity": name}),
                             frames=np.zeros((2, 8, 6, 3), np.uint8))
    assert [s.id for s in Dataset.open(tmp_path / "shared").with_looks(1)] == ["q0", "q2"]
    with DatasetWriter(tmp_path / "real") as w:
        w.write_sequence(_meta(0, T=2), frames=np.zeros((2, 8, 6, 3), np.uint8))
    with pytest.raises(DatasetError, match="records no rendered identity"):
        Dataset.open(tmp_path / "real").with_looks(1)
