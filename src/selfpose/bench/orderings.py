"""The paper's orderings of the main method and its ablations, re-measured on a benchmark's cells.

Honari et al. (TPAMI 2022) report, at few labels, full (DSL-STN-Dec-Split) < CSS-STN-Dec-Split <
AE-STN-Dec < DSL in N-MPJPE, with the full method at about half of DSL's error and 0.83 of the
autoencoder's (issue 14's reading of their tables). :func:`orderings` checks both on the mean
N-MPJPE over seeds of each label share; :func:`orderings_table` writes it for ``results.md``.
"""

from __future__ import annotations

import math

#: The paper's order at few labels, best first (registry names).
PAPER_ORDER = ("temporal", "css_stn_dec_split", "ae_stn_dec", "dsl")
#: full / method N-MPJPE ratios the paper reports.
PAPER_RATIOS = {"dsl": 0.50, "ae_stn_dec": 0.83}


def orderings(agg: dict, shares: list[float], metric: str = "n_mpjpe") -> list[dict]:
    """Per label share: each :data:`PAPER_ORDER` method's mean error, whether the paper's order holds, the ratios.

    Args:
        agg: :func:`selfpose.bench.report.aggregate` output, ``{(name, share): {metric: (mean, std, n)}}``.
        shares: label shares to report, in the order wanted.
        metric: which aggregated metric (mm).

    Returns:
        One dict per share that has the full method: ``share``; ``values`` ``{name: mean mm}`` of the
        methods present; ``holds``: True/False when all four are present (strictly increasing means,
        best first), else None; ``ratios`` ``{name: full / name}`` for :data:`PAPER_RATIOS`'s methods present.
    """
    out = []
    for share in shares:
        values = {}
        for name in PAPER_ORDER:
            cell = agg.get((name, float(share)), {}).get(metric)
            if cell is not None and not math.isnan(cell[0]):
                values[name] = float(cell[0])
        if PAPER_ORDER[0] not in values:
            continue
        seq = [values.get(n) for n in PAPER_ORDER]
        holds = None if None in seq else all(a < b for a, b in zip(seq, seq[1:]))
        full = values[PAPER_ORDER[0]]
        ratios = {n: full / values[n] for n in PAPER_RATIOS if n in values and values[n] > 0}
        out.append({"share": float(share), "values": values, "holds": holds, "ratios": ratios})
    return out


def orderings_table(agg: dict, shares: list[float], display_name) -> str:
    """Markdown: one row per share with the four methods' N-MPJPE, whether the paper's order holds and the
    ratios beside the paper's; empty when the benchmark ran the full method and none of the ablations."""
    rows = orderings(agg, shares)
    if not rows or not any(len(r["values"]) > 1 for r in rows):
        return ""
    names = [display_name(n) for n in PAPER_ORDER]
    head = ("| labels | " + " | ".join(names) + " | order holds | "
            + " | ".join(f"full / {display_name(n)} (paper {p:.2f})" for n, p in PAPER_RATIOS.items()) + " |\n"
            + "|---|" + "---:|" * len(names) + "---|" + "---:|" * len(PAPER_RATIOS) + "\n")
    body = ""
    for r in rows:
        vals = " | ".join(f"{r['values'][n]:.1f}" if n in r["values"] else "—" for n in PAPER_ORDER)
        holds = {True: "yes", False: "no", None: "—"}[r["holds"]]
        ratios = " | ".join(f"{r['ratios'][n]:.2f}" if n in r["ratios"] else "—" for n in PAPER_RATIOS)
        body += f"| {100 * r['share']:g}% | {vals} | {holds} | {ratios} |\n"
    return ("**The paper's orderings**, re-measured (N-MPJPE in mm, mean over seeds; the paper has "
            + " < ".join(names) + " at few labels)\n\n" + head + body)
