"""benchmarks/sync_transfer_probe.py: the benchmark's cells a probe is read beside are those of its pose seed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sync_transfer_probe.py"


def _probe():
    spec = importlib.util.spec_from_file_location("sync_transfer_probe", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(cells: Path, name: str, mpjpe: float) -> None:
    (cells / f"{name}.json").write_text(json.dumps({"mpjpe": mpjpe, "n_mpjpe": mpjpe - 6, "p_mpjpe": mpjpe - 80,
                                                    "made_with": {}}))


def test_the_benchmark_cells_of_the_probes_seed_not_seed_0(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    for seed, scratch, random in ((0, 216.8, 213.9), (1, 217.2, 218.0)):
        _write(cells, f"scratch_finetune_s1_s{seed}", scratch)
        _write(cells, f"random_same_crop_s{seed}_0.1", random)
    got = _probe().benchmark_cells(tmp_path, ["s1"], [0.1], seed=1)
    assert got["bench_scratch_finetune_s1"]["mpjpe"] == 217.2
    assert got["bench_random_same_crop_frozen_features_0.1"]["mpjpe"] == 218.0
    assert set(got) == {"bench_scratch_finetune_s1", "bench_random_same_crop_frozen_features_0.1"}   # none missing
    assert _probe().benchmark_cells(tmp_path, ["s1"], [0.1], seed=2) == {}          # no cell of that seed: none shown


def test_rows_picture_draws_the_benchmarks_scratch_when_the_probe_has_none(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.axes

    drawn = []
    orig = matplotlib.axes.Axes.axvline
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline",
                        lambda self, x=0, *a, **k: (drawn.append(round(x, 2)), orig(self, x, *a, **k))[1])
    probe = _probe()
    rows = {"easyneg_seed1_finetune_s1": {"mpjpe": 223.6}, "bench_scratch_finetune_s1": {"mpjpe": 217.2}}
    probe.plot_rows(rows, ["s1"], tmp_path / "rows.png")
    assert (tmp_path / "rows.png").stat().st_size > 0
    assert drawn == [217.2, round(0.9 * 217.2, 2)]                                  # scratch and the 10% target
    drawn.clear()
    probe.plot_rows({**rows, "scratch_seed1_finetune_s1": {"mpjpe": 216.1}}, ["s1"], tmp_path / "rows.png")
    assert drawn == [216.1, round(0.9 * 216.1, 2)]                                  # the probe's own scratch wins
    drawn.clear()
    # with --read the benchmark's cell is of another reading: no line (and no scratch at all is fine)
    probe.plot_rows(rows, ["s1"], tmp_path / "rows.png", bench_scratch=False)
    assert drawn == [] and (tmp_path / "rows.png").stat().st_size > 0


def test_transfer_against_pretext_finds_the_rows_of_a_nonzero_seed(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.axes

    points, lines = [], []
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", lambda self, x, y, *a, **k: points.append((x, y)))
    orig = matplotlib.axes.Axes.axhline
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline",
                        lambda self, y=0, *a, **k: (lines.append(round(y, 2)), orig(self, y, *a, **k))[1])
    pretext = {"sync_unflipped": {"accuracy": 0.579, "ci95": [0.55, 0.608]}}
    cells = {"easyneg_pretext": {**pretext, "step": 8000},
             "easyneg_seed1_finetune_s1": {"mpjpe": 223.6}, "scratch_seed1_finetune_s1": {"mpjpe": 216.1},
             "bench_scratch_finetune_s1": {"mpjpe": 217.2}}
    _probe().plot_transfer_vs_pretext(cells, ["s1"], tmp_path / "t.png", seed=1)
    assert [(round(x, 1), y) for x, y in points] == [(57.9, 223.6)]                   # the seed-1 row is drawn
    assert lines == [216.1, round(0.9 * 216.1, 2)]                                   # beside the probe's scratch
    points.clear()
    _probe().plot_transfer_vs_pretext(cells, ["s1"], tmp_path / "t.png")              # seed 0: no such rows
    assert points == []


def test_transfer_against_pretext_keeps_every_label_inside_the_axes(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure

    saved = []
    orig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: (saved.append(self),
                                                                                    orig(self, *a, **k))[1])
    cells = {}
    for name, acc, mpjpe in (("pairs", 0.547, 194.4), ("dense8_b32_4k", 0.716, 171.3)):   # a point at the right edge
        cells[f"{name}_pretext"] = {"sync_unflipped": {"accuracy": acc, "ci95": [acc - 0.027, acc + 0.027]},
                                    "step": 4000}
        cells[f"{name}_finetune_s1"] = {"mpjpe": mpjpe}
    _probe().plot_transfer_vs_pretext(cells, ["s1"], tmp_path / "t.png")
    fig = saved[0]
    ax = fig.axes[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()   # (closing the figure dropped its canvas)
    frame = ax.get_window_extent(renderer)
    labels = [t for t in ax.texts if "(step 4000)" in t.get_text()]
    assert len(labels) == 2
    for t in labels:
        box = t.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, (t.get_text(), box, frame)


def test_offset_scoring_refuses_runs_whose_pairs_would_differ():
    spec = importlib.util.spec_from_file_location("sync_pretext_offsets",
                                                  SCRIPT.parent / "sync_pretext_offsets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = {"min_offset_s": 0.08, "max_offset_s": 2.56, "still_fraction": 0.2, "single_view": False}
    assert mod.differing_settings({"a": base, "b": {**base, "min_offset_s": 0.5}}) == []   # the offset may differ
    assert mod.differing_settings({"a": base, "b": {**base, "still_fraction": 0.0, "single_view": True}}) == [
        "single_view", "still_fraction"]
