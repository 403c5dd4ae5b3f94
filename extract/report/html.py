"""A `Report` as one self-contained HTML page: the header, the counts and the panels; the review
list is `cards.py`.

Every value that comes from the output or the source goes through `e()` (HTML escaping, quotes
included) before it is put in the page. The page fetches nothing: its Content-Security-Policy
allows no network at all, the style sheet is inline and the one inline script is allowed by its
hash.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence

from .assets import SCRIPT, STYLE
from .cards import review_html
from .facts import Counts, Evaluation, FieldAccuracy, Histogram, Report
from .svg import histogram_svg
from .text import DASH, cut, e, money, num, pct, ratio, seconds, when

__all__ = ["render"]


def render(report: Report) -> str:
    """The whole page."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    # no network at all: nothing may be fetched, only the inline style and this script run
    policy = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    body = [
        _header_html(report),
        _missing_html(report.missing),
        _tiles_html(report),
        '<div class="grid">',
        _counts_html(report),
        _errors_html(report),
        _fills_html(report),
        _confidence_html(report.histogram, report),
        _accuracy_html(report.evaluation, report),
        _calibration_html(report.evaluation),
        "</div>",
        review_html(report.review, report.key),
        f"<footer>Written by extract on {when(report.generated_at)} from {e(report.output)}. "
        "This page is one file: it loads nothing from the network.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(policy)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(report.pipeline)} &middot; extract report</title>"
        f"<style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _header_html(report: Report) -> str:
    run = report.run
    items = [
        ("table", f"<code>{e(report.table)}</code>"),
        ("output", f"<code>{e(report.output)}</code>"),
    ]
    if run is None:
        items.append(("run", '<span class="muted">no run recorded</span>'))
    else:
        status = f'<span class="badge s-{e(run.status)}">{e(run.status)}</span>'
        if run.stop_reason:
            status += f' <span class="muted">{e(run.stop_reason)}</span>'
        took = seconds(run.seconds)
        items += [
            ("latest run", f"<code>{e(run.run_id)}</code>"),
            ("status", status),
            ("started", when(run.started_at)),
            (
                "ended",
                when(run.ended_at) + (f' <span class="muted">({took})</span>' if took else ""),
            ),
        ]
    model = run.model if run is not None and run.model else report.model
    items.append(("model", f"<code>{e(model)}</code>"))
    meta = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in items)
    return (
        f'<header><h1>{e(report.pipeline)}<span class="sub">extraction report</span></h1>'
        f'<dl class="meta">{meta}</dl></header>'
    )


def _missing_html(missing: Sequence[str]) -> str:
    if not missing:
        return ""
    items = "".join(f"<li>{e(m)}</li>" for m in missing)
    return (
        '<div class="notice"><strong>This output lacks some of what the report shows</strong> '
        f"(it may have been written by an older version of extract):<ul>{items}</ul></div>"
    )


def _tiles_html(report: Report) -> str:
    latest = report.run.counts if report.run is not None else report.in_tables
    review = report.review
    failed = report.in_tables.rows_failed
    scope = ", latest run" if report.run else ""
    tiles = [
        ("ok", num(report.in_tables.rows_ok), "rows in the table"),
        ("bad" if failed else "ok", num(failed), "rows in the errors table"),
        ("warn" if review.total else "ok", num(review.total), "rows to review"),
        ("", num(latest.requests), f"requests{scope}"),
        ("", money(latest.cost_usd), f"cost{scope}"),
    ]
    shown = "".join(
        f'<div class="tile {kind}"><div class="v">{value}</div><div class="l">{label}</div></div>'
        for kind, value, label in tiles
    )
    return f'<div class="tiles">{shown}</div>'


def _counts_html(report: Report) -> str:
    scopes: list[tuple[str, Counts | None]] = []
    if report.run is not None:
        scopes.append(("latest run", report.run.counts))
    if report.all_runs is not None:
        runs = report.runs_count
        scopes.append((f"all runs ({runs:,})", report.all_runs))
    scopes.append(("in the tables now", report.in_tables))
    lines: list[tuple[str, Callable[[Counts], str]]] = [
        ("rows ok", lambda c: num(c.rows_ok)),
        ("rows failed", lambda c: num(c.rows_failed)),
        ("rows cached", lambda c: num(c.rows_cached)),
        ("rows skipped", lambda c: num(c.rows_skipped)),
        ("requests", lambda c: num(c.requests)),
        ("prompt tokens", lambda c: num(c.prompt_tokens)),
        ("completion tokens", lambda c: num(c.completion_tokens)),
        ("tokens", lambda c: num(c.tokens)),
        ("cost", lambda c: money(c.cost_usd)),
    ]
    head = "".join(f'<th class="n">{name}</th>' for name, _ in scopes)
    body = "".join(
        f"<tr><td>{label}</td>"
        + "".join(
            f'<td class="n" data-scope="{e(name)}">{get(c) if c else DASH}</td>'
            for name, c in scopes
        )
        + "</tr>"
        for label, get in lines
    )
    return (
        '<section class="panel" id="counts"><h2>Rows and usage</h2>'
        f'<table class="t"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</section>"
    )


def _errors_html(report: Report) -> str:
    title = '<h2>Errors by class<span class="hint">the errors table</span></h2>'
    if not report.errors:
        failed = report.in_tables.rows_failed
        text = "No errors table in this output." if failed is None else "No failed rows."
        return f'<section class="panel" id="errors">{title}<p class="muted">{text}</p></section>'
    rows = "".join(
        f'<tr><td><code>{e(c.name)}</code></td><td class="n">{c.count:,}</td>'
        f'<td class="n">{c.in_latest_run:,}</td>'
        f'<td class="msg">{e(cut(c.example, 240)) if c.example else DASH}</td></tr>'
        for c in report.errors
    )
    return (
        f'<section class="panel" id="errors">{title}<table class="t"><thead><tr><th>class</th>'
        '<th class="n">rows</th><th class="n">latest run</th><th>example message</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _fills_html(report: Report) -> str:
    if not report.fills:
        return (
            '<section class="panel" id="fill"><h2>Fill rate per field</h2>'
            '<p class="muted">The table holds no rows or no schema fields.</p></section>'
        )
    total = report.fills[0].total
    rows = []
    for f in report.fills:
        depth = min(f.path.count("."), 3)
        name = f.path.rsplit(".", 1)[-1] if depth else f.path
        hint = ' <span class="muted">(non-empty)</span>' if f.kind == "list" else ""
        share = f.share
        width = f"{(share or 0) * 100:.1f}"
        low = " low" if share is not None and share < 0.5 else ""
        rows.append(
            f'<tr data-field="{e(f.path)}"><td class="depth{depth}" title="{e(f.path)}">'
            f"<code>{e(name)}</code>{hint}</td>"
            f'<td class="n">{f.filled:,}</td><td class="n">{pct(share)}</td>'
            f'<td><span class="meter{low}"><span style="width:{width}%"></span></span></td></tr>'
        )
    return (
        '<section class="panel" id="fill"><h2>Fill rate per field'
        f'<span class="hint">share of {total:,} rows holding a value</span></h2>'
        '<table class="t"><thead><tr><th>field</th><th class="n">rows</th>'
        f'<th class="n">share</th><th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</section>"
    )


def _confidence_html(h: Histogram | None, report: Report) -> str:
    title = '<h2>Confidence<span class="hint">lowest value confidence per row</span></h2>'
    if h is None:
        return (
            f'<section class="panel" id="confidence">{title}<p class="muted">'
            "The run had no confidence: <code>run.confidence: true</code> asks for it (the "
            "model's token log-probabilities).</p></section>"
        )
    return (
        f'<section class="panel" id="confidence">{title}{histogram_svg(h)}'
        f'<p class="muted">{h.total:,} rows have a confidence; {h.below:,} are below '
        f"{h.threshold:g} and listed for review.</p></section>"
    )


def _accuracy_row(a: FieldAccuracy, total: bool = False) -> str:
    name = "all fields" if a.field == "*" else f"<code>{e(a.field)}</code>"
    cls = ' class="total"' if total else ""
    return (
        f'<tr{cls} data-field="{e(a.field)}"><td>{name}</td>'
        f'<td>{e(a.mode) if a.mode else DASH}</td><td class="n">{num(a.n)}</td>'
        f'<td class="n">{pct(a.accuracy)}</td><td class="n">{ratio(a.precision)}</td>'
        f'<td class="n">{ratio(a.recall)}</td><td class="n">{ratio(a.f1)}</td></tr>'
    )


def _accuracy_html(ev: Evaluation | None, report: Report) -> str:
    title = "<h2>Accuracy against labels</h2>"
    if ev is None:
        return (
            f'<section class="panel" id="accuracy">{title}<p class="muted">No evaluation yet: '
            f"<code>extract eval</code> compares the table with labelled rows and writes "
            f"<code>{e(report.table)}_eval</code>.</p></section>"
        )
    facts = [f"evaluated {when(ev.evaluated_at)}"]
    if ev.labels:
        facts.append(f"labels <code>{e(ev.labels)}</code>")
    if ev.run_id:
        facts.append(f"run <code>{e(ev.run_id)}</code>")
    stale = ""
    if ev.run_id and report.run is not None and ev.run_id != report.run.run_id:
        stale = '<p class="error">This evaluation is of an earlier run, not of the latest one.</p>'
    parts = [f'<section class="panel" id="accuracy">{title}<p class="muted">{", ".join(facts)}</p>',
             stale]  # fmt: skip
    lines = [_accuracy_row(a, True) for a in ev.overall] + [_accuracy_row(a) for a in ev.fields]
    if lines:
        parts.append(
            '<table class="t"><thead><tr><th>field</th><th>mode</th><th class="n">n</th>'
            '<th class="n">accuracy</th><th class="n">precision</th><th class="n">recall</th>'
            f'<th class="n">F1</th></tr></thead><tbody>{"".join(lines)}</tbody></table>'
        )
    parts.append("</section>")
    return "".join(parts)


def _calibration_html(ev: Evaluation | None) -> str:
    if ev is None:
        return ""
    title = (
        '<h2>Calibration<span class="hint">is a value right as often as the model is sure?'
        "</span></h2>"
    )
    cal = ev.calibration
    if cal is None:
        note = e(ev.calibration_note or "No calibration.")
        return (
            f'<section class="panel" id="calibration">{title}<p class="muted">{note}</p></section>'
        )
    rows = "".join(
        f'<tr><td class="n">{b.low:.1f}&ndash;{b.high:.1f}</td><td class="n">{b.n:,}</td>'
        f'<td class="n">{b.mean_confidence:.3f}</td><td class="n">{pct(b.accuracy)}</td>'
        f'<td class="n">{b.accuracy - b.mean_confidence:+.3f}</td></tr>'
        for b in cal.bins
    )
    return (
        f'<section class="panel" id="calibration">{title}'
        '<table class="t"><thead><tr><th class="n">confidence</th>'
        '<th class="n">values</th><th class="n">mean confidence</th>'
        '<th class="n">correct</th><th class="n">correct &minus; confidence</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<p class="muted">Expected calibration error {cal.ece:.3f} over {cal.n:,} evaluated '
        "values with a confidence.</p></section>"
    )
