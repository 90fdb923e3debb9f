"""Jenni & Favaro's orderings seed by seed on hand-made results (selfpose.bench.sync_orderings)."""

from __future__ import annotations

import math

import pytest

from selfpose.bench.sync_orderings import SYNC_CLAIMS, paired_gaps, readings, sync_orderings, sync_orderings_table


def results(frozen: dict, finetuned: dict) -> dict:
    """``{name: [N-MPJPE at 10% per seed]}``, ``{name: [S1 MPJPE per seed]}`` → a results.json-like dict
    (None in a list: that seed did not run)."""
    cells, transfer = {}, {}
    for name, per_seed in frozen.items():
        for seed, v in enumerate(per_seed):
            if v is not None:
                cells[f"{name}_s{seed}_0.1"] = {"name": name, "seed": seed, "share": 0.1, "n_mpjpe": v,
                                                "mpjpe": v + 5, "p_mpjpe": v - 50}
    for name, per_seed in finetuned.items():
        for seed, v in enumerate(per_seed):
            if v is not None:
                transfer[f"{name}_finetune_s1_s{seed}"] = {"name": name, "seed": seed, "protocol": "s1", "mpjpe": v,
                                                           "n_mpjpe": v - 5, "p_mpjpe": v - 80}
    return {"cells": cells, "transfer": transfer}


def test_gaps_are_paired_within_seeds_and_count_the_seeds_where_the_order_holds():
    r = results({"sync": [200.0, 210.0], "sync_bg_keep": [212.0, 208.0]},
                {"sync": [220.0, 221.0], "sync_bg_keep": [230.0, None], "scratch": [215.0, 216.0]})
    rows = sync_orderings(r)
    got = {(x["better"], x["worse"], x["reading"]): x for x in rows}
    frozen = got[("sync", "sync_bg_keep", "frozen N-MPJPE, 10%")]
    assert frozen["gaps"] == {0: pytest.approx(12.0), 1: pytest.approx(-2.0)}
    assert frozen["mean"] == pytest.approx(5.0) and frozen["holds"] == 1
    tuned = got[("sync", "sync_bg_keep", "fine-tuned MPJPE, s1")]
    assert tuned["gaps"] == {0: pytest.approx(10.0)} and tuned["holds"] == 1   # seed 1 of keep did not run
    vs_scratch = got[("sync", "scratch", "fine-tuned MPJPE, s1")]
    assert vs_scratch["gaps"] == {0: pytest.approx(-5.0), 1: pytest.approx(-5.0)} and vs_scratch["holds"] == 0
    assert ("sync", "scratch", "frozen N-MPJPE, 10%") not in got                # scratch has no frozen cells
    # claims in SYNC_CLAIMS order, frozen before fine-tuned within a pair
    assert [x["reading"] for x in rows] == ["frozen N-MPJPE, 10%", "fine-tuned MPJPE, s1", "fine-tuned MPJPE, s1"]


def test_every_claims_pair_is_read_when_every_row_ran():
    names = {n for _, pairs in SYNC_CLAIMS for p in pairs for n in p}
    r = results({n: [200.0] for n in names - {"scratch"}}, {n: [220.0] for n in names})
    pairs = {(x["better"], x["worse"]) for x in sync_orderings(r)}
    assert pairs == {p for _, ps in SYNC_CLAIMS for p in ps}
    assert all(x["holds"] == 0 for x in sync_orderings(r))                    # ties do not count as holding


def test_nan_cells_are_left_out():
    r = results({"sync": [math.nan, 200.0], "flip_only": [205.0, 203.0]}, {})
    assert readings(r)["frozen N-MPJPE, 10%"].keys() == {("sync", 1), ("flip_only", 0), ("flip_only", 1)}
    assert paired_gaps(readings(r)["frozen N-MPJPE, 10%"], "sync", "flip_only") == {1: pytest.approx(3.0)}


def test_the_table_shows_each_seed_the_mean_and_the_count():
    r = results({"sync": [200.0, 210.0], "sync_single_view": [212.0, 208.0]}, {})
    text = sync_orderings_table(r)
    assert ("| multi-view > single view | `sync` vs `sync_single_view` | frozen N-MPJPE, 10% | +12.0 | -2.0 | +5.0 "
            "| 1/2 seeds |") in text
    assert "| seed 0 | seed 1 | mean | holds in |" in text


def test_no_table_without_a_pair_of_the_claims():
    assert sync_orderings_table(results({"sync": [200.0], "temporal": [190.0]}, {})) == ""
    assert sync_orderings_table({"cells": {}}) == ""
