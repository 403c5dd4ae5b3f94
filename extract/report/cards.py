"""The review list of the report page: one card per row to check, its input text with the
grounded values marked, and its values with their confidence and grounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from .facts import FOUND, Highlight, Review, ReviewRow, ValueLine
from .review import show_value
from .text import DASH, e

__all__ = ["TEXT_CHARS", "marked_html", "review_html"]

#: characters of one input column shown per row (a long document is cut, and says so)
TEXT_CHARS = 20_000
REASON_LABELS = {
    "failed": "failed",
    "wrong": "wrong value",
    "ungrounded": "not in text",
    "low_confidence": "low confidence",
}
STATUS_LABELS = {
    "exact": "exact",
    "normalized": "normalized",
    "fuzzy": "fuzzy",
    "none": "&#9888; not in text",
}


def marked_html(text: str, highlights: Sequence[Highlight]) -> str:
    """`text` escaped, with each highlighted span wrapped in `<mark>`.

    Spans may overlap (two fields found at the same place): the text is cut at every span
    boundary and each piece is marked with the best status among the spans covering it and
    every field path found there, so no markup is ever improperly nested.
    """
    spans = [h for h in highlights if 0 <= h.start < h.end <= len(text)]
    if not spans:
        return e(text)
    cuts = sorted({0, len(text), *(h.start for h in spans), *(h.end for h in spans)})
    out = []
    for start, end in pairwise(cuts):
        piece = e(text[start:end])
        cover = [h for h in spans if h.start <= start and end <= h.end]
        if not cover:
            out.append(piece)
            continue
        best = min((h.status for h in cover), key=FOUND.index)
        paths = list(dict.fromkeys(h.path for h in cover))
        out.append(
            f'<mark class="g-{best}" title="{e(", ".join(paths))}" '
            f'data-paths="{e(" ".join(paths))}">{piece}</mark>'
        )
    return "".join(out)


def _text_html(column: str, text: str, highlights: Sequence[Highlight]) -> str:
    shown = text[:TEXT_CHARS]
    more = len(text) - len(shown)
    tail = f'<p class="muted">&hellip; {more:,} more characters not shown</p>' if more else ""
    mine = [h for h in highlights if h.column == column]
    return (
        f'<p class="colname">{e(column)}</p><pre class="text" data-column="{e(column)}">'
        f"{marked_html(shown, mine)}</pre>{tail}"
    )


def _value_html(v: ValueLine, threshold: float) -> str:
    classes = []
    if v.grounding == "none":
        classes.append("ungrounded")
    if v.wrong is not None:
        classes.append("wrong")
    value = '<span class="null">null</span>' if v.value is None else e(show_value(v.value))
    if v.wrong is not None:
        value = (
            f'<span class="got">{value}</span>'
            f'<span class="expected">expected: {e(show_value(v.wrong.expected))}</span>'
        )
    if v.confidence is None:
        conf = f'<td class="n">{DASH}</td>'
    else:
        low = " low" if v.confidence < threshold else ""
        conf = f'<td class="n{low}">{v.confidence:.2f}</td>'
    where = DASH
    if v.grounding is not None:
        label = STATUS_LABELS.get(v.grounding, e(v.grounding))
        where = f'<span class="badge g-{e(v.grounding)}">{label}</span>'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return (
        f'<tr data-path="{e(v.path)}"{cls}><td><code>{e(v.path)}</code></td>'
        f'<td class="v">{value}</td>{conf}<td>{where}</td></tr>'
    )


def _row_html(row: ReviewRow, key: str, threshold: float) -> str:
    badges = " ".join(f'<span class="badge r-{r}">{REASON_LABELS[r]}</span>' for r in row.reasons)
    facts = []
    if row.min_confidence is not None:
        facts.append(f"lowest confidence {row.min_confidence:.2f}")
    if row.ungrounded:
        facts.append(f"{row.ungrounded:,} value{'' if row.ungrounded == 1 else 's'} not in text")
    if row.error is not None and row.error.attempts is not None:
        facts.append(f"{row.error.attempts:,} attempts")
    if row.texts:
        source = "".join(_text_html(c, t, row.highlights) for c, t in row.texts.items())
    else:
        source = '<p class="muted">The input text is not available.</p>'
    if row.error is not None:
        err = row.error
        raw = (
            f'<p class="colname">last answer</p><pre class="raw">{e(err.raw_output)}</pre>'
            if err.raw_output
            else '<p class="muted">No answer was kept.</p>'
        )
        detail = (
            f'<p class="error"><code>{e(err.error_class or "error")}</code> '
            f"{e(err.message or '')}</p>{raw}"
        )
    else:
        lines = "".join(_value_html(v, threshold) for v in row.values)
        detail = (
            '<table class="t vals"><thead><tr><th>field</th><th>value</th>'
            f'<th class="n">conf.</th><th>in text</th></tr></thead><tbody>{lines}</tbody></table>'
        )
        shown = {v.wrong.field for v in row.values if v.wrong is not None}
        rest = [m for m in row.mismatches if m.field not in shown]
        if rest:
            detail += "".join(
                f'<p class="error">wrong <code>{e(m.field)}</code>: '
                f"expected {e(show_value(m.expected))}, got {e(show_value(m.actual))}</p>"
                for m in rest
            )
    return (
        f'<article class="row" data-key="{e(row.key)}" data-reasons="{" ".join(row.reasons)}">'
        f"<header><h3>{e(key)} <code>{e(row.key)}</code></h3>{badges}"
        f'<span class="facts">{" &middot; ".join(facts)}</span></header>'
        f'<div class="cols"><div class="src">{source}</div><div>{detail}</div></div></article>'
    )


def review_html(review: Review, key: str) -> str:
    counts = review.by_reason
    said = [
        f"{counts[r]:,} {label}"
        for r, label in (
            ("failed", "failed"),
            ("wrong", "with wrong values"),
            ("ungrounded", "with values not found in the text"),
            ("low_confidence", f"with a value below confidence {review.threshold:g}"),
        )
        if counts.get(r)
    ]
    hint = f"{review.total:,} rows" + (": " + ", ".join(said) if said else "")
    parts = [
        f'<section id="review"><h2>Rows to review<span class="hint">{e(hint)}</span></h2>',
        "".join(f'<p class="muted">{e(n)}</p>' for n in review.notes),
    ]
    if not review.rows:
        parts.append('<p class="muted">Nothing to review.</p></section>')
        return "".join(parts)
    parts.append(
        '<div class="legend"><span>found in the text:</span>'
        '<span><mark class="g-exact">exact</mark></span>'
        '<span><mark class="g-normalized">normalized</mark></span>'
        '<span><mark class="g-fuzzy">fuzzy</mark></span>'
        f'<span class="badge g-none">{STATUS_LABELS["none"]}</span></div>'
    )
    parts.append('<div id="review-list">')
    parts.extend(_row_html(r, key, review.threshold) for r in review.rows)
    parts.append("</div>")
    if review.left_out:
        parts.append(
            f'<p class="notice" id="left-out">{len(review.rows):,} of {review.total:,} rows are '
            f"shown; {review.left_out:,} more are left out (the list stops at {review.cap:,}).</p>"
        )
    parts.append("</section>")
    return "".join(parts)
