"""The paper's orderings on hand-made aggregates (selfpose.bench.orderings)."""

from __future__ import annotations

import pytest

from selfpose.bench.orderings import orderings, orderings_table
from selfpose.bench.report import aggregate, display_name


def cells(values: dict) -> dict:
    """``{(name, share): [N-MPJPE per seed]}`` → benchmark cells."""
    out = {}
    for (name, share), per_seed in values.items():
        for seed, v in enumerate(per_seed):
            out[f"{name}_s{seed}_{share:g}"] = {"name": name, "share": share, "seed": seed, "n_mpjpe": v,
                                                "mpjpe": v, "p_mpjpe": v}
    return out


def test_the_order_and_the_ratios_on_known_means():
    agg = aggregate(cells({("temporal", 0.01): [90.0, 110.0], ("css_stn_dec_split", 0.01): [120.0],
                           ("ae_stn_dec", 0.01): [125.0], ("dsl", 0.01): [200.0],
                           ("temporal", 0.1): [100.0], ("css_stn_dec_split", 0.1): [95.0],
                           ("ae_stn_dec", 0.1): [130.0], ("dsl", 0.1): [150.0],
                           ("temporal", 1.0): [80.0], ("dsl", 1.0): [100.0]}))
    rows = {r["share"]: r for r in orderings(agg, [0.01, 0.1, 1.0])}
    assert rows[0.01]["holds"] is True and rows[0.01]["values"]["temporal"] == 100.0   # mean over seeds
    assert rows[0.01]["ratios"] == pytest.approx({"dsl": 0.5, "ae_stn_dec": 0.8})
    assert rows[0.1]["holds"] is False                                                 # CSS beats the full method
    assert rows[1.0]["holds"] is None and rows[1.0]["ratios"] == pytest.approx({"dsl": 0.8})   # two methods only
    text = orderings_table(agg, [0.01, 0.1, 1.0], display_name)
    assert "| 1% | 100.0 | 120.0 | 125.0 | 200.0 | yes | 0.50 | 0.80 |" in text
    assert "| 10% | 100.0 | 95.0 | 130.0 | 150.0 | no |" in text
    assert "| 100% | 80.0 | — | — | 100.0 | — | 0.80 | — |" in text
    assert "full / DSL (paper 0.50)" in text


def test_no_table_without_the_full_method_or_any_ablation():
    assert orderings_table(aggregate(cells({("temporal", 0.01): [100.0]})), [0.01], display_name) == ""
    assert orderings_table(aggregate(cells({("dsl", 0.01): [100.0]})), [0.01], display_name) == ""
    assert orderings(aggregate(cells({("dsl", 0.01): [100.0]})), [0.01]) == []


def test_rows_over_different_numbers_of_seeds_say_how_many():
    from selfpose.bench.report import read_table, tables

    def cell(name, seed, v):
        return {"name": name, "seed": seed, "share": 0.1, "n_mpjpe": v, "mpjpe": v + 5, "p_mpjpe": v - 50}

    cells = {"a0": cell("sync", 0, 200.0), "a1": cell("sync", 1, 210.0), "b0": cell("flip_only", 0, 205.0)}
    md = tables({"cells": cells, "config": {}}, ["sync", "flip_only"], [0.1])
    assert "| 205.0 ± 5.0 (2 seeds) |" not in md and "205.0 ± 7.1 (2 seeds)" in md   # sync: mean of 200 and 210
    assert "205.0 (1 seed)" in md                                                     # flip only: one seed
    assert read_table(md)["rows"][display_name("sync")] == [205.0]                   # still read back
    same = tables({"cells": {"a0": cells["a0"], "b0": cells["b0"]}, "config": {}}, ["sync", "flip_only"], [0.1])
    assert "(1 seed)" not in same and "seeds) |" not in same                         # one count: nothing added
    assert "over seeds where there are several" in same                              # every row: one seed
    both = tables({"cells": {**cells, "b1": cell("flip_only", 1, 215.0)}, "config": {}}, ["sync", "flip_only"], [0.1])
    assert "seeds) |" not in both and "(mean ± standard deviation over 2 seeds)" in both   # one count > 1: heading
    assert "over seeds where there are several" in md                                # counts differ: per cell
