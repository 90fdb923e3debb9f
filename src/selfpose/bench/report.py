"""The benchmark's report: tables (mean ± std over seeds), every cell as CSV/JSON, error against label share.

Writes into the work folder:

* ``results.md``: first the N-MPJPE table (rows: ``full method
  (DSL-STN-Dec-Split)``, every other method by its paper name, then the
  references — see :data:`REFERENCE_NAMES`; columns: the label shares in
  increasing order), which :func:`read_table` parses back; then the MLP head
  beside the ridge and k-NN probes, the paper's orderings of the ablations
  (:mod:`selfpose.bench.orderings`), MPJPE and P-MPJPE; how well the person
  can be read from each run's codes; the disentanglement analysis of the
  split methods; detection and compute;
* ``results.json``: everything :func:`selfpose.bench.run.run_benchmark` returns;
* ``cells.csv``: one row per method × seed × share;
* ``error_vs_labels.png``: N-MPJPE against label share (log x), one line per method.
* ``transfer.png`` (when rows are fine-tuned): MPJPE of each fine-tuned row per
  label protocol, one panel per protocol, ``scratch`` as a line across it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

METRICS = ("n_mpjpe", "mpjpe", "p_mpjpe")
TITLES = {"n_mpjpe": "N-MPJPE (mm)", "mpjpe": "MPJPE (mm)", "p_mpjpe": "P-MPJPE (mm)"}
#: Probes fitted beside the MLP head (:mod:`selfpose.pose.probe_fit`): their cells carry ``<probe>_<metric>``.
PROBES = {"ridge": "ridge", "knn": "k-NN"}
ALL_METRICS = METRICS + tuple(f"{p}_{m}" for p in PROBES for m in METRICS)
#: The full method's registry name; its row comes first, labelled :data:`FULL_METHOD_NAME`.
FULL_METHOD = "temporal"
FULL_METHOD_NAME = "full method (DSL-STN-Dec-Split)"
#: Reference rows in table order (after the methods), with their labels.
REFERENCE_NAMES = {"box_camera_ridge": "box + camera only (ridge)", "box_camera_knn": "box + camera only (10-NN)",
                   "random_same_crop": "random encoder, same crop",
                   "random": "random encoder, its untrained detector's crop",
                   "scratch_frozen": "same network at its random weights, frozen",
                   "supervised": "supervised from scratch",
                   "supervised_upper": "supervised from scratch, 100% labels (upper bound)",
                   "mean_pose": "mean pose", "scratch": "same network fine-tuned from scratch",
                   "supervised_start": "start trained on other people's 3D labels, fine-tuned (ceiling)",
                   "supervised_start_alone": "start trained on other people's 3D labels, not fine-tuned"}
#: Rows of the transfer table only, after the fine-tuned methods, in this order.
TRANSFER_ROWS = ("scratch", "supervised_start", "supervised_start_alone")
#: Labels of methods outside the temporal family's variants.
METHOD_NAMES = {"sync": "multi-view synchronisation (Jenni & Favaro)"}
#: Rows that read another row's cells: ``supervised_upper`` shows the supervised cell at 100% in every column.
SAME_AS = {"supervised_upper": ("supervised", 1.0)}


def display_name(name: str) -> str:
    """The row label: ``full method (DSL-STN-Dec-Split)``, a method's paper name (``dsl_stn`` → ``DSL-STN``),
    or the reference's description."""
    from selfpose.methods.variants import VARIANTS

    if name == FULL_METHOD:
        return FULL_METHOD_NAME
    if name in VARIANTS:
        return VARIANTS[name].paper_name
    return METHOD_NAMES.get(name) or REFERENCE_NAMES.get(name, name)


def row_names(cfg) -> list[str]:
    """Table rows: the full method first, the other methods in config order, then the references in
    :data:`REFERENCE_NAMES` order."""
    methods = [m for m in cfg.methods if m == FULL_METHOD] + [m for m in cfg.methods if m != FULL_METHOD]
    # ``scratch`` and the ceiling have fine-tuning cells only: rows of the transfer table, not of these
    return [*methods, *[r for r in REFERENCE_NAMES if r in cfg.references and r not in TRANSFER_ROWS]]


def aggregate(cells: dict) -> dict:
    """``{(name, share): {metric: (mean, std, n)}}`` over seeds; std is 0 for one seed (``n`` says how many).

    Metrics: :data:`ALL_METRICS` that the cells hold (probe metrics only where probes were fitted).
    """
    groups: dict = {}
    for c in cells.values():
        groups.setdefault((c["name"], float(c["share"])), []).append(c)
    out = {}
    for key, cs in groups.items():
        out[key] = {}
        for m in ALL_METRICS:
            v = np.array([c[m] for c in cs if c.get(m) is not None], np.float64)
            if len(v) or m in METRICS:
                out[key][m] = ((float(v.mean()) if len(v) else math.nan),
                               float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v)))
    return out


def lookup(agg: dict, name: str, share: float) -> dict:
    """The aggregated metrics of row ``name`` in the column ``share`` (:data:`SAME_AS` rows read another cell)."""
    key = SAME_AS.get(name, (name, float(share)))
    return agg.get(key, {})


def _fmt(cell, seeds: bool = False) -> str:
    """``mean ± std`` (the mean alone for one seed); ``seeds``: with how many seeds, e.g. ``(3 seeds)``."""
    if cell is None or math.isnan(cell[0]):
        return "—"
    mean, std, n = cell
    text = f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"
    return text + (f" ({n} seed{'s' if n > 1 else ''})" if seeds else "")


def share_label(share: float) -> str:
    """A column header: ``0.01`` → ``1% labels`` (:func:`read_table` reads it back)."""
    return f"{100 * share:g}% labels"


def read_table(text: str, title: str = TITLES["n_mpjpe"]) -> dict:
    """Parse the first table under a bold heading starting with ``title`` from a ``results.md``.

    Returns:
        ``{"shares": [0.01, ...], "rows": {row label: [mean or None per share]}}``
        (means in mm; ``—`` is None).

    Raises:
        ValueError: no such table.
    """
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"**{title}")), None)
    if start is None:
        raise ValueError(f"no table titled {title!r}")
    i = start + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    cells = lambda ln: [c.strip() for c in ln.strip().strip("|").split("|")]   # noqa: E731
    header = cells(lines[i])
    shares = [float(h.split("%")[0]) / 100 for h in header[1:]]
    rows = {}
    for ln in lines[i + 2:]:
        if not ln.startswith("|"):
            break
        c = cells(ln)
        rows[c[0]] = [None if v == "—" else float(v.split("±")[0].split("(")[0]) for v in c[1:]]
    return {"shares": shares, "rows": rows}


def tables(results: dict, names: list[str], shares: list[float]) -> str:
    """Markdown tables: N-MPJPE first (rows ``names``, columns ``shares`` increasing), the head beside the
    probes, MPJPE, P-MPJPE, person classification, disentanglement, detection and compute."""
    agg = aggregate(results["cells"])
    shares = sorted(shares)
    head = "| method | " + " | ".join(share_label(s) for s in shares) + " |\n|---|" + "---:|" * len(shares) + "\n"
    out = []
    # rows averaged over different numbers of seeds (a seed added for some rows only) say how many
    counts = {c[m][2] for n in names for s in shares for m in METRICS
              if (c := lookup(agg, n, s)).get(m) is not None and not math.isnan(c[m][0])}
    # one count for every row: the heading says it (the cells then carry no count of their own)
    over = (f"mean ± standard deviation over {next(iter(counts))} seeds" if len(counts) == 1 and max(counts) > 1
            else "mean ± standard deviation over seeds where there are several")
    for m in METRICS:
        rows = "".join(f"| {display_name(n)} | " + " | ".join(_fmt(lookup(agg, n, s).get(m), len(counts) > 1)
                                                            for s in shares) + " |\n" for n in names)
        val_by = (results.get("config") or {}).get("val_by", "take")
        chosen = {"subject": "held-out training people", "take": "held-out takes of the training people"}
        what = (" — the MLP pose head on frozen features for the methods and random encoders, its step chosen on "
                f"{chosen.get(val_by, val_by)}; each reference as named" if m == "n_mpjpe" else "")
        notes = ""
        if m == "n_mpjpe" and "random_same_crop" in names:
            src = results.get("same_crop_of") or FULL_METHOD
            notes = ("\n`random encoder, same crop`: the untrained encoder reads the crop "
                     + ("of the true person box" if src == "true_box" else f"that {display_name(src)}'s trained "
                        "detector cuts") + ".\n")
        if m == "n_mpjpe" and "scratch_frozen" in names:
            of = (results.get("config") or {}).get("scratch_of")
            notes += (f"\n`same network at its random weights, frozen`: {display_name(of) if of else 'the scratch row'}'s "
                      "network before any training, read exactly as that row reads its frames (its crop and its pose "
                      "input) under the same head: what the pretraining itself adds.\n")
        if m == "n_mpjpe" and {"supervised", "supervised_upper"} & set(names):
            crop = ((results.get("config") or {}).get("supervised") or {}).get("crop", "detector")
            notes += ("\n`supervised from scratch`: the same network and head trained end to end on the share's labels, "
                      + ("reading the crop of the true person box (`supervised.crop: true_box`)"
                         if crop == "true_box" else "its detector learnt from the pose loss alone") + ".\n")
        out.append(f"**{TITLES[m]}, lower is better**{what} ({over})\n\n{head}{rows}{notes}")
        if m == "n_mpjpe":
            out.append(probe_table(agg, names, shares))
            from selfpose.bench.orderings import orderings_table

            if order := orderings_table(agg, shares, display_name):
                out.append(order)
    if results.get("analysis"):
        rows = []
        for n, a in results["analysis"].items():
            pv, pi = (a.get(k) or {} for k in ("pose_from_v", "pose_from_i"))
            pv, pi = (p.get("val_n_mpjpe") if isinstance(p, dict) else p for p in (pv, pi))
            rows.append(f"| {display_name(n)} | {a['kmeans_v']:.3f} | {a['kmeans_i']:.3f} | {a['chance']:.3f} | "
                        + " | ".join("—" if p is None else f"{p:.1f}" for p in (pv, pi)) + " |")
        out.append("**Disentanglement** of the split methods (training subjects): KMeans subject accuracy of `v` "
                   "and `i`, and the validation N-MPJPE (mm) of a pose head on each\n\n"
                   "| method | KMeans v | KMeans i | chance | pose from v | pose from i |\n"
                   "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")
    if results.get("transfer"):
        out.append(transfer_table(results))
        from selfpose.bench.protocol_room import protocol_room_table, target_table

        if against := target_table(results):
            out.append(against)
        if room := protocol_room_table(results):
            out.append(room)
    from selfpose.bench.sync_orderings import sync_orderings_table

    if order := sync_orderings_table(results):
        out.append(order)
    if results.get("persons"):
        out.append(persons_table(results["persons"], names))
    out.append(cost_table(results, names))
    return "\n\n".join(out)


def transfer_table(results: dict) -> str:
    """Transfer by fine-tuning: rows the fine-tuned rows (then :data:`TRANSFER_ROWS`: ``scratch`` and the
    ceiling's two), columns the label protocols,
    MPJPE / N-MPJPE / P-MPJPE (mean ± std over seeds)."""
    cfg = results.get("config") or {}
    protocols = list((cfg.get("protocols") or {}).keys()) or sorted({c["protocol"] for c in results["transfer"].values()})
    have = {c["name"] for c in results["transfer"].values()}
    rows = [*(cfg.get("finetune_for") or []), *[r for r in TRANSFER_ROWS if r in have]]
    groups: dict = {}
    for c in results["transfer"].values():
        groups.setdefault((c["name"], c["protocol"]), []).append(c)

    def cell(name: str, protocol: str) -> str:
        cs = groups.get((name, protocol), [])
        if not cs:
            return "—"
        parts = []
        for m in ("mpjpe", "n_mpjpe", "p_mpjpe"):
            v = np.array([c[m] for c in cs if c.get(m) is not None], np.float64)
            parts.append("—" if not len(v) else f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else ""))
        return " / ".join(parts) + (f" ({len(cs)} seeds)" if len(cs) > 1 else "")

    def describe(p: str) -> str:
        spec = (cfg.get("protocols") or {}).get(p) or {}
        who = ", ".join(spec.get("subjects") or []) or "every training subject"
        looks = spec.get("looks_per_subject")
        if looks is not None:
            who += f" ({'its first look' if looks == 1 else f'the first {looks} looks'} only)"
        return f"`{p}`: {who}, {100 * float(spec.get('fraction', 1.0)):g}% of their frames, step chosen on held-out " \
               f"{'takes' if spec.get('val_by', cfg.get('val_by')) == 'take' else 'training people'}"

    from selfpose.bench.config import BenchmarkConfig

    ft = cfg.get("finetune") or {}
    # results written before the key existed ran the config's default
    start_steps = cfg.get("supervised_start_steps", BenchmarkConfig.supervised_start_steps)
    head = "| method | " + " | ".join(protocols) + " |\n|---|" + "---:|" * len(protocols) + "\n"
    body = "".join(f"| {display_name(n)} | " + " | ".join(cell(n, p) for p in protocols) + " |\n" for n in rows)
    return ("**Transfer by fine-tuning** (MPJPE / N-MPJPE / P-MPJPE, mm, lower is better): the backbone's first "
            f"{ft.get('frozen_stages', 3)} stages frozen, the rest trained with a pose head for "
            f"{ft.get('steps', 1000)} steps (AdamW, cosine); `scratch` trains every stage from random weights for "
            "the same steps. Protocols: " + "; ".join(describe(p) for p in protocols) + "."
            + (" The ceiling rows start from the scratch network trained first on the 3D labels of the training "
               f"people the protocol leaves unlabelled ({start_steps} steps, one held "
               "out to keep the step): what a start that knows pose could buy; `not fine-tuned` is that start's "
               "own score." if "supervised_start" in have else "")
            + "\n\n" + head + body)


def probe_table(agg: dict, names: list[str], shares: list[float]) -> str:
    """N-MPJPE of the MLP head beside the ridge and k-NN probes on the same frozen features, per share
    (rows with probes only: the methods and the random encoders)."""
    cols = [("n_mpjpe", "MLP")] + [(f"{p}_n_mpjpe", t) for p, t in PROBES.items()]
    with_probes = [n for n in names if any(f"{p}_n_mpjpe" in lookup(agg, n, s) for p in PROBES for s in shares)]
    if not with_probes:
        return "**N-MPJPE (mm) by probe**: no probes were fitted (probes.kinds is empty)\n"
    head = ("| method | " + " | ".join(f"{100 * s:g}% {t}" for s in shares for _, t in cols) + " |\n|---|"
            + "---:|" * (len(shares) * len(cols)) + "\n")
    rows = "".join(f"| {display_name(n)} | " + " | ".join(_fmt(lookup(agg, n, s).get(m)) for s in shares
                                                          for m, _ in cols) + " |\n" for n in with_probes)
    return ("**N-MPJPE (mm) by probe, lower is better**: the MLP head beside a closed-form ridge probe and a "
            "k-nearest-neighbour probe on the same standardised frozen features, each choosing its step or "
            "setting on the same held-out frames\n\n" + head + rows)


def persons_table(persons: dict, names: list[str]) -> str:
    """How well a linear classifier reads the person from each run's ``v`` and ``i``, on takes it never saw
    (rows in the order of ``names``)."""
    def acc(r: dict, code: str) -> str:
        v = (r or {}).get(code)
        return "—" if v is None else f"{v:.3f}"

    rows = []
    for n in sorted(persons, key=lambda n: names.index(n) if n in names else len(names)):
        p = persons[n]
        tr, te = p.get("training_people") or {}, p.get("test_people") or {}
        rows.append(f"| {display_name(n)} | {acc(tr, 'v')} | {acc(tr, 'i')} | {acc(tr, 'chance')} | "
                    f"{acc(te, 'v')} | {acc(te, 'i')} | {acc(te, 'chance')} |")
    first = next(iter(persons.values()), {})
    label = (first.get("test_people") or first.get("training_people") or {}).get("label", "subject")
    return (f"**Who is filmed, read from the codes**: accuracy of a linear classifier of the {label} on "
            "standardised `v` and `i`, fitted on half of each person's takes and scored on the other half — "
            "for the training people and for the test people, never seen in pretraining (higher = the code "
            "keeps more of the person; chance = the largest class)\n\n"
            "| method | training people: v | i | chance | test people: v | i | chance |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")


def cost_table(results: dict, names: list[str]) -> str:
    """Detection quality and compute per method: mean box IoU on the test set, pretraining and pose-cell seconds.

    Seconds are those of the run that computed each piece (a cached cell keeps
    its original time), so the total is what the command costs from scratch on
    the machine that made the cells, whatever reruns happened since.
    """
    pre = results.get("pretrain_seconds") or {}
    cfg = results.get("config") or {}
    row_steps = cfg.get("row_steps") or {}

    def steps_of(n: str) -> str:
        """A pretrained row's steps (its own in ``row_steps``, else the benchmark's); — for a reference."""
        if n not in (cfg.get("methods") or ()):
            return "—"
        steps = row_steps.get(n, cfg.get("steps"))
        return f"{steps:,}" if steps is not None else "—"

    transfer = list((results.get("transfer") or {}).values())
    # rows with fine-tuning cells only (scratch, the ceiling) follow the config's rows
    names = [*names, *[r for r in TRANSFER_ROWS if r not in names and any(c["name"] == r for c in transfer)]]
    rows, total, counted = [], 0.0, set()
    for n in names:
        if n in SAME_AS:   # a row that shows another row's cells (the 100% supervised cell): count them once
            src, share = SAME_AS[n]
            cs = [c for c in results["cells"].values() if c["name"] == src and c["share"] == share]
        else:
            cs = [c for c in results["cells"].values() if c["name"] == n]
        cs = [c for c in cs if (c["name"], c["seed"], c["share"]) not in counted]
        ts = [c for c in transfer if c["name"] == n]
        if not cs and not ts:
            continue
        counted.update((c["name"], c["seed"], c["share"]) for c in cs)
        ious = [c["box_iou"] for c in cs if c.get("box_iou") is not None]
        runs = {f"{n}_s{c['seed']}" for c in (*cs, *ts)}
        p = [pre[r] for r in runs if pre.get(r) is not None]
        cell_s = sum(c.get("seconds") or 0.0 for c in cs)
        tune_s = sum(c.get("seconds") or 0.0 for c in ts)
        total += sum(p) + cell_s + tune_s
        per = max(len(runs), 1)
        rows.append(f"| {display_name(n)} | " + (f"{np.mean(ious):.3f}" if ious else "—") + f" | {steps_of(n)} | "
                    + (f"{np.mean(p):.0f}" if p else "—") + " | " + (f"{cell_s / per:.0f}" if cs else "—") + " | "
                    + (f"{tune_s / per:.0f}" if ts else "—") + f" | {len(runs)} |")
    ana = sum(a.get("seconds") or 0.0 for part in ("analysis", "persons") for a in (results.get(part) or {}).values())
    rendered = [v for v in (results.get("data_seconds") or {}).values() if v is not None]
    data = sum(rendered)
    total += ana + data
    data_txt = f"data rendering {data:.0f} s" if rendered else "data rendering not recorded"
    return ("**Detection and compute**: mean box IoU with the true boxes on the test set; pretraining steps; wall "
            "seconds per seed of pretraining, of the frozen-feature pose cells (feature extraction included) and of "
            "the fine-tuning cells (every protocol)\n\n"
            "| method | box IoU | pretraining steps | pretraining (s) | pose cells (s) | fine-tuning (s) | seeds |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n"
            + "\n".join(rows)
            + f"\n\nTotal compute: {total / 60:.0f} min ({data_txt}, analyses of the codes {ana:.0f} s).\n")


def plot(results: dict, names: list[str], shares: list[float], path: Path) -> str:
    """N-MPJPE against label share (log x), error bars = std over seeds; with a single share, a bar per row
    instead (a column of overlapping markers hid rows within a few mm of each other). Returns which was drawn:
    ``"lines"`` or ``"bars"``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter

    agg = aggregate(results["cells"])
    shares = sorted(shares)
    if len(shares) == 1:
        _bars(agg, names, shares[0], path)
        return "bars"
    colours = plt.get_cmap("tab20").colors   # distinct colours: the default cycle repeats after 10 methods
    markers = "osD^v<>ph*"
    ref_dashes = ["--", ":", "-.", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3))]
    refs = [n for n in names if n in REFERENCE_NAMES]
    methods = [n for n in names if n not in REFERENCE_NAMES]
    # tab20's dark shades first, then the light ones; its two greys (14, 15) are left to the references
    method_order = [i for i in range(0, 20, 2) if i != 14] + [i for i in range(1, 20, 2) if i != 15]
    fig, ax = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    for k, n in enumerate(names):
        pts = [(s, lookup(agg, n, s)["n_mpjpe"]) for s in shares if lookup(agg, n, s)]
        if not pts:
            continue
        x = [p[0] * 100 for p in pts]
        y = [p[1][0] for p in pts]
        e = [p[1][1] for p in pts]
        ref = n in REFERENCE_NAMES
        if ref:
            # References in greys, each with its own grey and dash pattern: six black dashed lines were told
            # apart only by their markers.
            r = refs.index(n)
            style = {"linestyle": ref_dashes[r % len(ref_dashes)],
                     "color": str(round(0.6 * r / max(len(refs) - 1, 1), 3)), "alpha": 0.9}
        else:
            m = methods.index(n)
            style = {"linestyle": "-", "color": colours[method_order[m % len(method_order)]]}
        ax.errorbar(x, y, yerr=e, fmt=markers[k % len(markers)], ms=4, capsize=3, label=display_name(n), **style)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_xlabel("labelled training frames")
    ax.set_ylabel("N-MPJPE (mm), lower is better")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))   # outside: lines fill the axes
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return "lines"


def _bars(agg: dict, names: list[str], share: float, path: Path) -> None:
    """One share: a horizontal bar per row (N-MPJPE, mm; error bar = std over seeds), methods in blue,
    references in grey, the axis zoomed on the rows."""
    import matplotlib.pyplot as plt

    rows = [n for n in names if lookup(agg, n, share)]
    vals = [lookup(agg, n, share)["n_mpjpe"] for n in rows]
    means, stds = [v[0] for v in vals], [v[1] for v in vals]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(rows) + 1.4), dpi=120)
    y = np.arange(len(rows))
    ax.barh(y, means, xerr=stds, capsize=3, alpha=0.85,
            color=["0.6" if n in REFERENCE_NAMES else "#4c72b0" for n in rows])
    for k, m in enumerate(means):
        ax.annotate(f"{m:.1f}", (m + stds[k], k), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    if means:   # zoomed on the rows: differences of a few mm are what the table is about
        lo, hi = min(np.subtract(means, stds)), max(np.add(means, stds))
        pad = max(3.0, 0.2 * (hi - lo))
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks(y, [display_name(n) for n in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("N-MPJPE (mm), lower is better")
    ax.set_title(f"frozen features, {share_label(share)} (grey: references)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def transfer_plot(results: dict, path: Path) -> bool:
    """One panel per label protocol: a bar per fine-tuned row (MPJPE, mm; mean over seeds, each seed a dot),
    ``scratch`` — the same network from random weights — as a dashed line across the panel, 10% below it (issue
    15's target) dash-dotted, and the mean pose reference (no image: a constant) dotted when the benchmark ran
    it — a row past that line learnt nothing that carries to the test people. False when there is nothing to
    plot."""
    cells = list((results.get("transfer") or {}).values())
    if not cells:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results.get("config") or {}
    protocols = [p for p in ((cfg.get("protocols") or {}).keys() or sorted({c["protocol"] for c in cells}))
                 if any(c["protocol"] == p for c in cells)]
    rows = [n for n in (cfg.get("finetune_for") or sorted({c["name"] for c in cells} - set(TRANSFER_ROWS)))
            if any(c["name"] == n for c in cells)]
    rows += [n for n in TRANSFER_ROWS[1:] if any(c["name"] == n for c in cells)]   # the ceiling's, in green
    mean_pose = [float(c["mpjpe"]) for c in (results.get("cells") or {}).values()
                 if c.get("name") == "mean_pose" and c.get("mpjpe") is not None]
    vals = {(c["name"], c["protocol"]): [] for c in cells}
    for c in cells:
        if c.get("mpjpe") is not None:
            vals[c["name"], c["protocol"]].append(float(c["mpjpe"]))
    label = max((len(display_name(n)) for n in rows), default=0)   # room for the longest row label
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.6 * len(protocols) + 0.06 * label, 0.32 * len(rows) + 1.6),
                             dpi=120,
                             sharey=True, squeeze=False)
    y = np.arange(len(rows))
    for ax, p in zip(axes[0], protocols):
        means = [np.mean(vals[n, p]) if vals.get((n, p)) else np.nan for n in rows]
        ax.barh(y, means, color=["#55a868" if n in TRANSFER_ROWS else "#4c72b0" for n in rows], alpha=0.8)
        for k, n in enumerate(rows):
            for v in vals.get((n, p)) or []:
                ax.plot(v, k, "k.", ms=3)
            if np.isfinite(means[k]):   # right of the bar and of every seed's dot, so no dot sits on the figure
                ax.annotate(f"{means[k]:.1f}", (max([means[k], *(vals.get((n, p)) or [])]), k), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=7)
        scratch = vals.get(("scratch", p)) or []
        finite = [m for m in means if np.isfinite(m)] + scratch + [v for n in rows for v in vals.get((n, p)) or []]
        title = f"protocol `{p}`"
        if scratch:
            ax.axvline(np.mean(scratch), color="0.2", linestyle="--", label=f"from scratch, {np.mean(scratch):.1f}")
            ax.axvline(0.9 * np.mean(scratch), color="0.2", linestyle="-.", lw=0.8,
                       label=f"10% below scratch, {0.9 * np.mean(scratch):.1f}")
            title += f"\n(dashed: from scratch, {np.mean(scratch):.1f})"
            finite.append(0.9 * np.mean(scratch))
        if mean_pose:
            ax.axvline(np.mean(mean_pose), color="tab:red", linestyle=":", label=f"mean pose, {np.mean(mean_pose):.1f}")
            finite.append(np.mean(mean_pose))
        if scratch or mean_pose:
            ax.legend(loc="lower right", fontsize=6, framealpha=0.9)
        if finite:   # zoomed on the rows: differences of a few mm are what the table is about
            lo, hi = min(finite), max(finite)
            pad = max(3.0, 0.2 * (hi - lo))
            ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("MPJPE (mm), lower is better")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, [display_name(n) for n in rows], fontsize=8)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def provenance(results: dict) -> str:
    """One line: when, on what machine and at which commit the report was written."""
    env = results.get("environment") or {}
    git = env.get("git") or {}
    def name(g: dict) -> str:
        return (g.get("commit", "")[:7] + (" (uncommitted changes)" if g.get("dirty") else "")) or "unknown"

    commit = name(git)
    start = env.get("git_at_start") or {}
    if start and start.get("commit") != git.get("commit"):
        # the run's code was loaded at the start; the checkout moved while it ran
        commit = f"{name(start)} (started; the checkout was at {commit} when the report was written)"
    return (f"Written {env.get('time', '?')} on {env.get('cpu', '?')} ({env.get('cpu_count', '?')} CPUs), "
            f"torch {env.get('torch', '?')}, selfpose commit {commit}. Cells computed by earlier runs of the "
            "command are reused (see `computed` in results.json).")


def write_report(results: dict, cfg, work: Path) -> None:
    """``results.md``, ``results.json``, ``cells.csv``, ``error_vs_labels.png`` (and ``transfer.png``) in ``work``."""
    names = row_names(cfg)
    shares = sorted(cfg.shares)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    with open(work / "cells.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "share", *ALL_METRICS, "box_iou", "labelled", "frames", "val_n_mpjpe",
                    "val_subjects"])
        for c in results["cells"].values():
            w.writerow([c["name"], c["seed"], c["share"], *[c.get(m) for m in ALL_METRICS], c.get("box_iou"),
                        c.get("labelled"), c.get("frames"), c.get("val_n_mpjpe"),
                        " ".join(c.get("val_subjects") or [])])
    kind = plot(results, names, shares, work / "error_vs_labels.png")
    extra = ""
    if transfer_plot(results, work / "transfer.png"):
        extra = "\n![MPJPE after fine-tuning, per label protocol](transfer.png)\n"
    (work / "results.md").write_text(provenance(results) + "\n\n" + tables(results, names, shares)
                                     + f"\n\n![{'N-MPJPE per row' if kind == 'bars' else 'N-MPJPE against label share'}]"
                                       "(error_vs_labels.png)\n" + extra)
