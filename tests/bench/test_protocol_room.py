"""The room a label protocol leaves above scratch (selfpose.bench.protocol_room), on hand-made cells."""

from __future__ import annotations

import math

import pytest

from selfpose.bench.protocol_room import labels_everyone, paired_gain, protocol_room, protocol_room_table


def _cells(rows: dict) -> dict:
    """{(name, protocol, seed): mpjpe} → a results dict with those transfer cells and three protocols."""
    transfer = {f"{n}_finetune_{p}_s{s}": {"name": n, "protocol": p, "seed": s, "mpjpe": v}
                for (n, p, s), v in rows.items()}
    return {"transfer": transfer, "config": {"protocols": {"s1": {"subjects": ["S1"]}, "all": {},
                                                           "look": {"subjects": ["S1"], "looks_per_subject": 1}}}}


def test_gains_are_paired_within_seeds_and_in_percent_of_scratch():
    assert paired_gain({0: 200.0, 1: 100.0}, {0: 180.0, 1: 110.0, 2: 1.0}) == pytest.approx((0.0, 2))  # +10%, -10%
    assert paired_gain({0: 200.0}, {1: 180.0}) is None                       # no seed in common


def test_room_per_protocol_against_everyone_labelled_the_ceiling_and_the_row():
    res = _cells({("scratch", "s1", 0): 200.0, ("scratch", "s1", 1): 220.0,
                  ("scratch", "all", 0): 180.0, ("scratch", "all", 1): 198.0,
                  ("supervised_start", "s1", 0): 170.0, ("sync", "s1", 0): 210.0, ("sync", "s1", 1): math.nan,
                  ("scratch", "look", 0): 250.0, ("supervised_start", "look", 0): 220.0})
    rows = {r["protocol"]: r for r in protocol_room(res)}
    assert rows["s1"]["scratch"] == pytest.approx(210.0) and rows["s1"]["seeds"] == 2
    assert rows["s1"]["everyone"] == pytest.approx((10.0, 2))               # 200→180 and 220→198: 10% each
    assert rows["s1"]["ceiling"] == pytest.approx((15.0, 1))
    assert rows["s1"]["row"] == pytest.approx((-5.0, 1))                      # NaN seed left out; worse: negative
    assert rows["all"]["everyone"] is None and rows["all"]["ceiling"] is None
    assert rows["look"]["everyone"] == pytest.approx((28.0, 1)) and rows["look"]["row"] is None
    text = protocol_room_table(res)
    assert "| `s1` | 210.0 (2) | +10.0% (2) | +15.0% (1) | -5.0% (1) |" in text
    assert "| `look` | 250.0 (1) | +28.0% (1) | +12.0% (1) | — |" in text
    assert "| `all` |" not in text and "+24.2%" in text                      # the paper's room beside ours


def test_no_table_without_a_reference_to_size_the_room():
    assert protocol_room_table(_cells({("scratch", "s1", 0): 200.0, ("sync", "s1", 0): 190.0})) == ""
    assert protocol_room_table({"transfer": {}}) == ""
    text = protocol_room_table(_cells({("scratch", "s1", 0): 200.0, ("supervised_start", "s1", 0): 180.0}))
    assert "| `s1` | 200.0 (1) | — | +10.0% (1) |\n" in text and "sync" not in text   # no sync cells: no column


def test_only_a_protocol_labelling_every_frame_of_everyone_sizes_the_room():
    assert labels_everyone({}) and labels_everyone(None) and labels_everyone({"fraction": 1.0, "val_by": "subject"})
    assert not labels_everyone({"subjects": ["S1"]}) and not labels_everyone({"fraction": 0.1})
    assert not labels_everyone({"looks_per_subject": 1})
    res = _cells({("scratch", "s1", 0): 200.0, ("scratch", "tenth", 0): 220.0, ("scratch", "all", 0): 180.0})
    res["config"]["protocols"] = {"tenth": {"fraction": 0.1}, "s1": {"subjects": ["S1"]}, "all": {}}
    rows = {r["protocol"]: r for r in protocol_room(res)}
    assert rows["s1"]["everyone"] == pytest.approx((10.0, 1))                 # against `all`, not `tenth`
    assert rows["tenth"]["everyone"] is not None and rows["all"]["everyone"] is None


def test_the_transfer_picture_draws_scratch_the_target_and_the_mean_pose(tmp_path, monkeypatch):
    """Each protocol's panel carries scratch, 10% below it and the mean pose (a row past that line learnt
    nothing that carries to the test people)."""
    from matplotlib.axes import Axes

    from selfpose.bench.report import transfer_plot

    drawn = []
    real = Axes.axvline
    monkeypatch.setattr(Axes, "axvline", lambda self, x=0, *a, **k: drawn.append((round(float(x), 2), k.get("label")))
                        or real(self, x, *a, **k))
    res = _cells({("scratch", "s1", 0): 200.0, ("sync", "s1", 0): 210.0, ("scratch", "look", 0): 250.0})
    res["config"]["finetune_for"] = ["sync"]
    res["cells"] = {"mean_pose_s0_0.1": {"name": "mean_pose", "seed": 0, "share": 0.1, "mpjpe": 237.9}}
    assert transfer_plot(res, tmp_path / "t.png") and (tmp_path / "t.png").stat().st_size > 5000
    assert (200.0, "from scratch, 200.0") in drawn and (180.0, "10% below scratch, 180.0") in drawn
    assert (225.0, "10% below scratch, 225.0") in drawn                          # each panel its own scratch
    assert [d for d in drawn if d[0] == 237.9] == [(237.9, "mean pose, 237.9")] * 2


def test_target_table_reads_each_fine_tuned_row_against_the_same_seeds_scratch():
    from selfpose.bench.protocol_room import target_table

    res = _cells({("scratch", "s1", 1): 200.0, ("scratch", "s1", 2): 180.0,
                  ("sync", "s1", 1): 204.0, ("sync_groups", "s1", 1): 160.0, ("sync_groups", "s1", 2): 171.0,
                  ("supervised_start", "s1", 1): 170.0, ("sync_groups", "all", 1): 150.0})
    res["config"]["finetune_for"] = ["sync", "sync_groups"]
    text = target_table(res)
    # 200 → 160 is 20% below, 180 → 171 5%: mean 12.5%, the 10% target met in one of two seeds
    assert ("| `s1` | `sync_groups` | +20.0% (seed 1: 160.0 vs 200.0), +5.0% (seed 2: 171.0 vs 180.0) | +12.5% | 1/2 |"
            in text)
    assert "| `s1` | `sync` | -2.0% (seed 1: 204.0 vs 200.0) | -2.0% | 0/1 |" in text
    assert "| `s1` | `supervised_start` | +15.0% (seed 1: 170.0 vs 200.0) | +15.0% | 1/1 |" in text
    assert "`all`" not in text                                                # no scratch under `all`: no line
    assert target_table(_cells({("sync", "s1", 0): 190.0})) == "" and target_table({"transfer": {}}) == ""
