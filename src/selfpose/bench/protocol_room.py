"""How much room each label protocol of a benchmark's transfer cells leaves above training from scratch.

Issue 15's target — a pretrained start fine-tuned under a protocol beats the same network from scratch by 10% —
is only measurable where some start *could* do that. Two references size it, both from the ``transfer`` cells
of :func:`selfpose.bench.run.run_benchmark` (MPJPE, mm, on the test people):

* **labels of everyone**: scratch under the first protocol that labels every frame of every training person
  (no ``subjects``, no look limit, the whole ``fraction``: :func:`labels_everyone`),
  as the paper's "all subjects labelled" (Jenni & Favaro: 79.5 against 104.9 with S1 only, 24.2% lower);
* **the ceiling**: the ``supervised_start`` row — the scratch network trained first on the 3D labels of the
  people the protocol leaves unlabelled, then fine-tuned as the rows (:mod:`selfpose.bench.supervised_start`).

Gains are paired within a seed (the rows of one seed share data, labelled subset and validation frames) and given
as a percentage of that seed's scratch error, then averaged over the seeds both rows ran.
"""

from __future__ import annotations

from selfpose.bench.sync_orderings import readings

#: Jenni & Favaro's ResNet18 from scratch, Human3.6M MPJPE (mm): S1 labelled, every subject labelled.
PAPER_SCRATCH_S1, PAPER_SCRATCH_ALL = 104.9, 79.5


def _by_seed(values: dict[tuple[str, int], float], name: str) -> dict[int, float]:
    """``{seed: MPJPE mm}`` of row ``name`` in one reading of :func:`~selfpose.bench.sync_orderings.readings`."""
    return {seed: v for (n, seed), v in values.items() if n == name}


def gains_by_seed(scratch: dict[int, float], other: dict[int, float]) -> dict[int, float]:
    """``{seed: 100 · (scratch − other) / scratch}`` over the seeds both have: percent below scratch (positive:
    ``other`` is better)."""
    return {s: 100 * (scratch[s] - other[s]) / scratch[s] for s in sorted(set(scratch) & set(other))}


def paired_gain(scratch: dict[int, float], other: dict[int, float]) -> tuple[float, int] | None:
    """``(mean, number of seeds)`` of :func:`gains_by_seed`; None when no seed has both."""
    gain = gains_by_seed(scratch, other)
    return (sum(gain.values()) / len(gain), len(gain)) if gain else None


def labels_everyone(spec: dict | None) -> bool:
    """Whether a protocol's settings label every frame of every training person (no ``subjects``, no look
    limit, the whole ``fraction``)."""
    spec = spec or {}
    return (not spec.get("subjects") and spec.get("looks_per_subject") is None
            and float(spec.get("fraction", 1.0)) == 1.0)


def protocol_room(results: dict, row: str = "sync") -> list[dict]:
    """One dict per protocol with scratch cells: ``protocol``, ``scratch`` (mean MPJPE mm), ``seeds``, and the
    paired gains (:func:`paired_gain`, ``(percent, seeds)`` or None) of ``everyone`` (scratch with every training
    person labelled; None for that protocol itself), ``ceiling`` (``supervised_start``) and ``row`` (the method
    row named ``row``)."""
    cfg = results.get("config") or {}
    specs = cfg.get("protocols") or {}
    protocols = list(specs) or sorted({c["protocol"] for c in (results.get("transfer") or {}).values()})
    everyone = next((p for p in protocols if labels_everyone(specs.get(p))), None)
    by_reading = readings(results)   # the orderings table's values: fine-tuned MPJPE per protocol, NaN left out
    tuned = lambda p: by_reading.get(f"fine-tuned MPJPE, {p}", {})  # noqa: E731
    out = []
    for p in protocols:
        scratch = _by_seed(tuned(p), "scratch")
        if not scratch:
            continue
        out.append({"protocol": p, "scratch": sum(scratch.values()) / len(scratch), "seeds": len(scratch),
                    "everyone": None if p == everyone or everyone is None
                    else paired_gain(scratch, _by_seed(tuned(everyone), "scratch")),
                    "ceiling": paired_gain(scratch, _by_seed(tuned(p), "supervised_start")),
                    "row": paired_gain(scratch, _by_seed(tuned(p), row))})
    return out


def protocol_room_table(results: dict, row: str = "sync", target: float = 10.0) -> str:
    """Markdown of :func:`protocol_room` beside the paper's room; empty without a reference to size it (no
    protocol with both scratch and either the everyone-labelled scratch or the ceiling). The ``row`` column is
    left out when that row has no fine-tuning cells."""
    rows = [r for r in protocol_room(results, row) if r["everyone"] or r["ceiling"]]
    if not rows:
        return ""
    with_row = any(r["row"] for r in rows)

    def pct(g) -> str:
        return "—" if g is None else f"{g[0]:+.1f}% ({g[1]})"

    body = "".join(f"| `{r['protocol']}` | {r['scratch']:.1f} ({r['seeds']}) | {pct(r['everyone'])} | "
                   f"{pct(r['ceiling'])} |" + (f" {pct(r['row'])} |" if with_row else "") + "\n" for r in rows)
    paper = 100 * (PAPER_SCRATCH_S1 - PAPER_SCRATCH_ALL) / PAPER_SCRATCH_S1
    return (f"**Room of each label protocol** (fine-tuned MPJPE, percent below the same seed's scratch, averaged over "
            f"the seeds in brackets; positive: better than scratch). The target is {target:g}% below scratch; it is "
            "measurable where a start could reach it. `every person labelled`: scratch with every training person's "
            f"labels (the paper: {PAPER_SCRATCH_ALL} against {PAPER_SCRATCH_S1} with S1 only, {paper:+.1f}%); "
            "`ceiling`: a start trained on the 3D labels of the people the protocol leaves unlabelled, then "
            "fine-tuned as the rows" + (f"; `{row}`: the paper's recipe" if with_row else "") + "\n\n"
            "| protocol | scratch (mm) | every person labelled | ceiling |" + (f" {row} |" if with_row else "")
            + "\n|---|---:|---:|---:|" + ("---:|" if with_row else "") + "\n" + body)


def target_table(results: dict, target: float = 10.0) -> str:
    """Markdown: issue 15's target read off the ``transfer`` cells — each fine-tuned row (``finetune_for``, then
    ``supervised_start``) against the same seed's ``scratch`` in each protocol, in percent of that seed's scratch
    MPJPE (positive: better), seed by seed, their mean, and in how many seeds the row is at least ``target``
    percent below scratch. Empty without a protocol that has scratch cells and another row of the same seed."""
    cfg = results.get("config") or {}
    specs = cfg.get("protocols") or {}
    protocols = list(specs) or sorted({c["protocol"] for c in (results.get("transfer") or {}).values()})
    by_reading = readings(results)
    body = ""
    for p in protocols:
        tuned = by_reading.get(f"fine-tuned MPJPE, {p}", {})
        scratch = _by_seed(tuned, "scratch")
        for row in [*(cfg.get("finetune_for") or []), "supervised_start"]:
            other = _by_seed(tuned, row)
            gain = gains_by_seed(scratch, other)
            if not gain:
                continue
            per = ", ".join(f"{g:+.1f}% (seed {s}: {other[s]:.1f} vs {scratch[s]:.1f})" for s, g in gain.items())
            body += (f"| `{p}` | `{row}` | {per} | {sum(gain.values()) / len(gain):+.1f}% | "
                     f"{sum(g >= target for g in gain.values())}/{len(gain)} |\n")
    if not body:
        return ""
    return (f"**Against scratch** (fine-tuned MPJPE, percent below the same seed's `scratch` — the same network "
            f"from random weights, every stage fine-tuned for the same steps; positive: better). Target: at least "
            f"{target:g}% below in the one-subject protocol (issue 15)\n\n"
            f"| protocol | row | below scratch, by seed (MPJPE mm: row vs scratch) | mean | seeds ≥ {target:g}% |\n"
            "|---|---|---|---:|---:|\n" + body)


__all__ = ("PAPER_SCRATCH_ALL", "PAPER_SCRATCH_S1", "gains_by_seed", "labels_everyone", "paired_gain",
           "protocol_room", "protocol_room_table", "target_table")
