"""Medians, ratios to the floor, goal checks and the markdown tables. Standard library only."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """One client run: its own cost (rusage), what the server saw, and what came out."""

    client: str
    rows: int
    wall_s: float
    run_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    rows_asked: int
    valid: int
    errors: int
    duplicates: int
    exit_code: int
    server_cpu_s: float

    @property
    def lost(self) -> int:
        return self.rows - self.valid - self.errors

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.run_s if self.run_s > 0 else 0.0

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.rows * 1000 if self.rows else 0.0

    @property
    def requests_per_valid(self) -> float:
        return self.requests / self.valid if self.valid else float("inf")


@dataclass(frozen=True)
class Summary:
    """Medians over repetitions of one client's figures."""

    client: str
    reps: int
    wall_s: float
    run_s: float
    rows_per_s: float
    cpu_per_1k: float
    peak_rss_mb: float
    requests_per_valid: float
    valid: float
    errors: float
    lost_max: int
    duplicates_max: int
    server_cpu_s: float
    bad_exit: int
    rows_asked_min: int

    @classmethod
    def of(cls, runs: Sequence[Measure]) -> Summary:
        def med(values: Sequence[float]) -> float:
            return statistics.median(values)

        return cls(
            client=runs[0].client,
            reps=len(runs),
            wall_s=med([r.wall_s for r in runs]),
            run_s=med([r.run_s for r in runs]),
            rows_per_s=med([r.rows_per_s for r in runs]),
            cpu_per_1k=med([r.cpu_per_1k for r in runs]),
            peak_rss_mb=med([r.peak_rss_mb for r in runs]),
            requests_per_valid=med([r.requests_per_valid for r in runs]),
            valid=med([r.valid for r in runs]),
            errors=med([r.errors for r in runs]),
            # Losing a row even once is a failure: report the worst repetition, not the median.
            lost_max=max(r.lost for r in runs),
            duplicates_max=max(r.duplicates for r in runs),
            server_cpu_s=med([r.server_cpu_s for r in runs]),
            bad_exit=sum(1 for r in runs if r.exit_code not in (0, 3)),
            rows_asked_min=min(r.rows_asked for r in runs),
        )


def _num(value: float, digits: int = 2) -> str:
    if value == float("inf"):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _with_ratio(value: float, floor: float | None, digits: int = 2) -> str:
    if floor is None or floor == 0 or value == float("inf"):
        return _num(value, digits)
    return f"{_num(value, digits)} ({value / floor:.2f}x)"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


CLIENT_HEADER = [
    "client", "wall s", "run s", "rows/s", "Little's-law limit rows/s", "share of limit",
    "CPU s / 1k rows", "peak RSS MB", "requests / valid row", "valid", "in errors", "lost",
]  # fmt: skip


def client_table(summaries: Sequence[Summary], *, limit: float | None) -> list[str]:
    """One markdown table: a row per client, ratios to the floor in brackets."""
    floor = next((s for s in summaries if s.client == "floor"), None)
    lines = ["| " + " | ".join(CLIENT_HEADER) + " |", "|" + " --- |" * len(CLIENT_HEADER)]
    for s in summaries:
        ref = floor if floor is not None and s is not floor else None
        cells = [
            s.client,
            _with_ratio(s.wall_s, ref.wall_s if ref else None),
            _with_ratio(s.run_s, ref.run_s if ref else None),
            _with_ratio(s.rows_per_s, ref.rows_per_s if ref else None, 0),
            _num(limit, 0) if limit else "none (0 ms)",
            f"{s.rows_per_s / limit:.1%}" if limit else "n/a",
            _with_ratio(s.cpu_per_1k, ref.cpu_per_1k if ref else None, 3),
            _with_ratio(s.peak_rss_mb, ref.peak_rss_mb if ref else None, 0),
            _with_ratio(s.requests_per_valid, ref.requests_per_valid if ref else None, 3),
            _count(s.valid),
            _count(s.errors),
            str(s.lost_max),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def memory_table(rows: Sequence[tuple[str, Measure]]) -> list[str]:
    header = [
        "source", "rows", "wall s", "run s", "rows/s", "CPU s / 1k rows", "peak RSS MB",
        "requests / valid row", "valid", "in errors", "lost",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for source, m in rows:
        cells = [
            source,
            f"{m.rows:,}",
            _num(m.wall_s),
            _num(m.run_s),
            _num(m.rows_per_s, 0),
            _num(m.cpu_per_1k, 3),
            _num(m.peak_rss_mb, 0),
            _num(m.requests_per_valid, 3),
            f"{m.valid:,}",
            f"{m.errors:,}",
            str(m.lost),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def startup_table(rows: Sequence[tuple[str, float, float, float]]) -> list[str]:
    lines = ["| client (0 rows) | wall s | CPU s | peak RSS MB |", "| --- | --- | --- | --- |"]
    for name, wall, cpu, rss in rows:
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |")
    return lines


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
