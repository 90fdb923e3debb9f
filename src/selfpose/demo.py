"""``selfpose demo``: the main job on the embedded default data.

Until the learning methods land, the demo renders the default ``lab``
dataset from the motion shipped with the package (CMU, free to ship),
validates it (3D→2D reprojection, shapes, ranges), measures the background
estimate against the true background, and draws a contact sheet. Everything
goes into one report folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from selfpose.config import to_dict


def run_demo(out: str | Path, *, quick: bool = False, overwrite: bool = True, progress: bool = True) -> Path:
    """Run the demo into ``out`` and return the path of its report (``report.md``)."""
    from selfpose.data import inspect
    from selfpose.evaluation.backgrounds import background_error_report
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.viz.sheet import contact_sheet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Quick: a handful of short takes, enough to exercise every step.
    cfg = SynthConfig(scenario="lab", max_sequences=2 if quick else 8, max_seconds=4.0 if quick else 20.0)
    t0 = time.perf_counter()
    data = synthesize(cfg, out / "data", overwrite=overwrite, progress=progress)
    t_synth = time.perf_counter() - t0
    ds = Dataset.open(data)
    summary = inspect.summarize(ds)
    check = inspect.check(ds)
    bg = background_error_report(ds)
    contact_sheet(ds, out / "contact_sheet.png", num_frames=16, seed=0)

    results = {"config": to_dict(cfg), "synth_seconds": round(t_synth, 1), "frames": ds.num_frames,
               "check_ok": check["ok"], "worst_reprojection_px": check["reprojection"]["worst_px"],
               "background_mae_255": bg}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [
        "# selfpose demo", "",
        f"Rendered `{data}`: {ds.num_frames} frames, {len(ds)} sequences, subjects {', '.join(ds.subjects())}, "
        f"views {', '.join(ds.views())} in {t_synth:.1f} s.", "",
        f"Validation: {'passed' if check['ok'] else 'FAILED'}; worst 3D→2D reprojection error "
        f"{check['reprojection']['worst_px']:.3f} px.", "",
        f"Background estimate vs truth (mean absolute error /255 on pixels the person covers in under half "
        f"of the frames): {bg['mae_255']:.2f} over {bg['sequences']} sequences (worst {bg['worst_mae_255']:.2f}).", "",
        "![contact sheet](contact_sheet.png)", "",
        "```", inspect.format_summary(summary), "```", "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
