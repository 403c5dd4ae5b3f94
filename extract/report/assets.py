"""The report page's inline style sheet and script, and the colours they paint with.

Everything is inline so the page is one file that opens anywhere, offline: system fonts only, no
web fonts, images or scripts fetched. The script only adds conveniences (a filter bar over the
review list, value-to-text highlighting on hover); the page reads the same without it.
"""

from __future__ import annotations

__all__ = ["COLOURS", "SCRIPT", "STYLE"]

#: the colours the tests look for in a screenshot: keep them exact (no alpha, no gradients)
COLOURS = {
    "g-exact": "#bfe8c6",
    "g-normalized": "#c9dcfb",
    "g-fuzzy": "#fbe3a6",
    "bar": "#4a6fd1",
    "bar-low": "#e8833a",
}

_CSS = """
:root {
  --ink: #1d2430; --muted: #5d6675; --line: #dde2ea; --soft: #f5f7fa; --panel: #ffffff;
  --ok: #1f7a3d; --warn: #a85a00; --bad: #b3261e; --accent: #2f56b8;
  color-scheme: light;
}
* { box-sizing: border-box; }
html { background: var(--soft); }
body {
  margin: 0 auto; max-width: 1240px; padding: 20px 24px 40px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
    "Helvetica Neue", Arial, sans-serif;
}
h1 { font-size: 22px; margin: 0 0 4px; letter-spacing: -0.01em; }
h1 .sub { color: var(--muted); font-weight: 400; font-size: 15px; margin-left: 6px; }
h2 { font-size: 15px; margin: 0 0 10px; }
h2 .hint { color: var(--muted); font-weight: 400; font-size: 12.5px; margin-left: 6px; }
h3 { font-size: 14px; margin: 0; }
code, pre, .mono {
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 12.5px;
}
.muted { color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 8px 0 16px; padding: 0; }
.meta div { display: flex; gap: 6px; align-items: baseline; }
.meta dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.meta dd { margin: 0; }
.notice {
  background: #fff8e6; border: 1px solid #f0d999; border-radius: 8px; padding: 8px 12px;
  margin: 0 0 14px;
}
.notice ul { margin: 4px 0 0; padding-left: 20px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px;
  margin-bottom: 14px; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.tile .v { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .l { color: var(--muted); font-size: 12px; }
.tile.bad .v { color: var(--bad); } .tile.warn .v { color: var(--warn); }
.tile.ok .v { color: var(--ok); }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px;
  margin-bottom: 14px; align-items: start; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; min-width: 0; }
.panel.wide { grid-column: 1 / -1; }
table.t { border-collapse: collapse; width: 100%; }
table.t th, table.t td { padding: 4px 8px; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
table.t td:first-child { white-space: nowrap; }
table.t th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
table.t tr:last-child td { border-bottom: 0; }
table.t .n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.t tr.total td { font-weight: 650; }
td.msg { overflow-wrap: anywhere; }
.depth1 { padding-left: 22px !important; } .depth2 { padding-left: 36px !important; }
.depth3 { padding-left: 50px !important; }
.meter { display: inline-block; width: 90px; height: 8px; background: #e9edf3;
  border-radius: 4px; overflow: hidden; vertical-align: middle; }
.meter span { display: block; height: 100%; background: var(--accent); }
.meter.low span { background: #e3a06a; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  line-height: 18px; white-space: nowrap; border: 1px solid transparent; }
.s-completed { background: #e3f4e8; color: var(--ok); }
.s-running, .s-stopped, .s-interrupted, .s-killed { background: #fdf0dc; color: var(--warn); }
.s-failed { background: #fde4e1; color: var(--bad); }
.r-failed { background: #fde4e1; color: var(--bad); }
.r-wrong { background: #f6e1fb; color: #7b2692; }
.r-ungrounded { background: #fff0d6; color: var(--warn); }
.r-low_confidence { background: #e5ecfb; color: var(--accent); }
mark { color: inherit; border-radius: 2px; padding: 0; }
.legend mark { padding: 0 3px; }
mark.g-exact, .badge.g-exact { background: var(--g-exact); }
mark.g-normalized, .badge.g-normalized { background: var(--g-normalized); }
mark.g-fuzzy, .badge.g-fuzzy { background: var(--g-fuzzy); }
mark.on { outline: 2px solid var(--accent); }
.badge.g-none { background: #fde4e1; color: var(--bad); font-weight: 600; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12.5px; margin: 2px 0 10px; }
.chart { width: 100%; max-width: 560px; height: auto; display: block; }
.chart text { font-size: 10.5px; fill: var(--muted); }
.chart .count { fill: var(--ink); }
.chart .thr { fill: var(--bad); }
.filter { display: flex; gap: 6px; flex-wrap: wrap; margin: 0 0 10px; }
.filter button { font: inherit; font-size: 12.5px; padding: 3px 10px; border-radius: 14px;
  border: 1px solid var(--line); background: var(--panel); cursor: pointer; }
.filter button[aria-pressed="true"] { background: var(--ink); color: #fff;
  border-color: var(--ink); }
article.row { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  margin: 0 0 10px; padding: 10px 14px; }
article.row > header { display: flex; gap: 8px; align-items: center; flex-wrap: wrap;
  margin-bottom: 8px; }
article.row > header .facts { color: var(--muted); font-size: 12.5px; margin-left: auto; }
.cols { display: grid; grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr); gap: 14px; }
@media (max-width: 820px) { .cols, .grid { grid-template-columns: 1fr; } }
.colname { font-size: 11.5px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; margin: 0 0 2px; }
pre.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0 0 8px; padding: 8px 10px;
  background: var(--soft); border-radius: 6px; max-height: 26em; overflow: auto;
  font-family: inherit; font-size: 13.5px; line-height: 1.55; }
pre.raw { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 0; padding: 6px 10px;
  background: #fbf3f2; border-radius: 6px; max-height: 14em; overflow: auto; }
.vals td.v { overflow-wrap: anywhere; }
.vals tr.ungrounded td.v { color: var(--bad); }
.vals tr.wrong .got { text-decoration: line-through; text-decoration-color: #7b2692; }
.vals .expected { display: block; color: #7b2692; font-size: 12.5px; }
.vals td.low { color: var(--bad); font-weight: 600; }
.null { color: var(--muted); font-style: italic; }
.error { color: var(--bad); margin: 0 0 4px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
"""

#: the exact colours as custom properties, before the rules that use them
STYLE = (
    ":root { " + " ".join(f"--{name}: {value};" for name, value in COLOURS.items()) + " }" + _CSS
)

SCRIPT = """
(function () {
  "use strict";
  var list = document.getElementById("review-list");
  if (!list) { return; }
  var cards = Array.prototype.slice.call(list.querySelectorAll("article.row"));
  var labels = {failed: "Failed", wrong: "Wrong value", ungrounded: "Not in text",
                low_confidence: "Low confidence"};
  function has(card, reason) {
    return (" " + card.getAttribute("data-reasons") + " ").indexOf(" " + reason + " ") >= 0;
  }
  var bar = document.createElement("div");
  bar.id = "review-filter";
  bar.className = "filter";
  bar.setAttribute("role", "toolbar");
  var buttons = [];
  function add(reason, text) {
    var n = cards.filter(function (c) { return !reason || has(c, reason); }).length;
    if (reason && n === 0) { return; }
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text + " (" + n + ")";
    b.setAttribute("data-reason", reason);
    b.setAttribute("aria-pressed", reason ? "false" : "true");
    b.addEventListener("click", function () {
      buttons.forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      cards.forEach(function (c) { c.hidden = !!reason && !has(c, reason); });
    });
    buttons.push(b);
    bar.appendChild(b);
  }
  add("", "All shown");
  Object.keys(labels).forEach(function (r) { add(r, labels[r]); });
  list.parentNode.insertBefore(bar, list);
  // pointing at a value outlines where it stands in the text
  function light(event, on) {
    var tr = event.target.closest ? event.target.closest("tr[data-path]") : null;
    if (!tr) { return; }
    var card = tr.closest("article.row");
    var path = tr.getAttribute("data-path");
    card.querySelectorAll("mark[data-paths]").forEach(function (m) {
      if (m.getAttribute("data-paths").split(" ").indexOf(path) >= 0) {
        m.classList.toggle("on", on);
      }
    });
  }
  list.addEventListener("mouseover", function (e) { light(e, true); });
  list.addEventListener("mouseout", function (e) { light(e, false); });
})();
"""
