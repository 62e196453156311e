"""Render outcomes as a markdown table with target verdicts, and as JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .timing import Outcome

__all__ = ["distributions", "markdown", "verdicts", "write_json"]


def _target_cell(outcome: Outcome) -> str:
    role, target = outcome.contender.role, outcome.benchmark.target
    if role == "floor":
        return "floor"
    if role == "peer":
        return "(peer)"
    if role == "info" or target is None:
        return "(info)"
    return f"{target.describe()} {'ok' if outcome.meets_target else 'MISSED'}"


def _ratio_cell(outcome: Outcome) -> str:
    if outcome.contender.role == "floor":
        return "1.00x"
    ratio = outcome.ratio
    return "-" if ratio is None else f"{ratio:.2f}x"


def _peer_verdict(outcomes: Sequence[Outcome]) -> str | None:
    """Is every checked row faster (median) than every peer row of its benchmark?"""
    by_benchmark: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        by_benchmark.setdefault(id(outcome.benchmark), []).append(outcome)
    pairs = missed = 0
    lost: list[str] = []
    for group in by_benchmark.values():
        ours = [o for o in group if o.contender.role == "checked"]
        peers = [o for o in group if o.contender.role == "peer"]
        for mine in ours:
            for peer in peers:
                pairs += 1
                if mine.median_us >= peer.median_us:
                    missed += 1
                    lost.append(
                        f"{mine.benchmark.name}: {mine.contender.name} {mine.median_us:.2f} µs "
                        f"vs {peer.contender.name} {peer.median_us:.2f} µs"
                    )
    if not pairs:
        return None
    if not lost:
        return f"- ahead of every peer: HOLDS for all {pairs} comparisons"
    return f"- ahead of every peer: MISSED in {missed} of {pairs} comparisons ({'; '.join(lost)})"


def verdicts(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per kind of target (does it hold for every checked row?), and one for peers."""
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        target = outcome.benchmark.target
        if target is not None and outcome.meets_target is not None:
            groups.setdefault(f"{target.label} {target.describe()}", []).append(outcome)
    lines = []
    for label, group in groups.items():
        missed = [o for o in group if not o.meets_target]
        if not missed:
            lines.append(f"- {label}: HOLDS for all {len(group)} rows")
        else:
            names = ", ".join(f"{o.benchmark.name} / {o.contender.name}" for o in missed)
            lines.append(f"- {label}: MISSED by {len(missed)} of {len(group)} rows ({names})")
    peer_line = _peer_verdict(outcomes)
    if peer_line is not None:
        lines.append(peer_line)
    return lines


def distributions(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per contender that kept its single calls: median, p90 and worst, in ms."""
    lines = []
    for o in outcomes:
        samples = o.contender.samples
        if not samples:
            continue
        ms = sorted(ns / 1e6 for ns in samples)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        lines.append(
            f"- {o.benchmark.name} / {o.contender.name}: median {statistics.median(ms):.3f} ms, "
            f"p90 {p90:.3f} ms, worst {ms[-1]:.3f} ms over {len(ms)} calls"
        )
    return lines


def markdown(outcomes: Sequence[Outcome], meta: Mapping[str, Any], notes: Sequence[str]) -> str:
    """The results table, the verdicts, how it was measured, and notes such as skipped peers."""
    rows = [
        "| benchmark | contender | median µs/call | ratio vs floor | target |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.benchmark.name} | {o.contender.name} | {o.median_us:.2f} "
            f"| {_ratio_cell(o)} | {_target_cell(o)} |"
        )
    setup = ", ".join(f"{key} {value}" for key, value in meta.items())
    parts = [
        "\n".join(rows),
        "Targets:\n" + "\n".join(verdicts(outcomes)),
        f"Measured: {setup}. Medians over rounds; each ratio is the median of per-round ratios "
        "(every round runs all contenders' batches back to back, in rotating order).",
    ]
    spread = distributions(outcomes)
    if spread:
        parts.append("Single calls (all rounds):\n" + "\n".join(spread))
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def write_json(
    path: Path, outcomes: Sequence[Outcome], meta: Mapping[str, Any], notes: Sequence[str]
) -> None:
    """Write the results, with every round's per-call time, to ``path``."""
    results = [
        {
            "benchmark": o.benchmark.name,
            "contender": o.contender.name,
            "role": o.contender.role,
            "calls_per_batch": o.benchmark.calls,
            "median_us": o.median_us,
            "ratio_vs_floor": o.ratio,
            "target": o.benchmark.target.describe() if o.benchmark.target else None,
            "meets_target": o.meets_target,
            "per_call_us_by_round": [ns / 1000 for ns in o.per_call_ns],
            "single_calls_us": (
                None if o.contender.samples is None else [ns / 1000 for ns in o.contender.samples]
            ),
        }
        for o in outcomes
    ]
    document = {"meta": dict(meta), "notes": list(notes), "results": results}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
