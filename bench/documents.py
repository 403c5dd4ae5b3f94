"""PDFs as input: seconds per page to read the text layer and to render a page image, and the
peak memory of a run over many multi-page PDFs.

    .venv/bin/python bench/documents.py [--pdfs 200] [--pages 5] [--reps 3]

Writes `--pdfs` invoice PDFs of `--pages` pages each (data/make_pdfs.py's writer, fpdf2: a dev
dependency) into a temporary folder, then, each in its own child process:
- `text`: PDFium opens every PDF and reads every page's text layer (extract/documents/pdf.py);
- `render`: every page rendered at the default 100 dpi and encoded as PNG;
- `extract run` in text mode and in images mode over all the PDFs against the test server (its
  own process, no latency), its peak RSS from os.wait4.
Seconds per page are the median of `--reps` passes. Markdown to stdout.

This parent process imports only the standard library and bench/measure.py: a child's ru_maxrss
starts from its parent's high-water mark on Linux, so the parent must stay small.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import PYTHON, ROOT, Server, ServerSpec, child_env, run_child

EXTRACT = str(Path(PYTHON).parent / "extract")

SCHEMA = '''
from pydantic import BaseModel

class Invoice(BaseModel):
    """An invoice's number and total."""
    invoice_number: str
    total: float
'''

PIPELINE = """\
name: bench_documents
source: {{type: csv, path: in.csv, key: id}}
schema: invoice.py:Invoice
prompt:
  user: "Invoice {{id}}:\\n{{pdf}}"
  documents: [pdf]
  document_defaults: {{as: {mode}}}
model: {{base_url: {base_url}, api_key_env: null, seed: 7}}
run: {{concurrency: 16}}
output: {{type: duckdb, path: out_{mode}.duckdb, table: invoices}}
"""


def make(folder: Path, pdfs: int, pages: int) -> None:
    """Child: write the PDFs and the CSV listing them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pdfs", ROOT / "data" / "make_pdfs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (folder / "pdfs").mkdir()
    rows = ["id,pdf"]
    for i in range(pdfs):
        # 30 item lines a page: about as much text as a real invoice page holds
        content = [
            [f"Invoice INV-{i:05d}, page {p + 1} of {pages}"]
            + [f"{n + 1} x Item {i}-{p}-{n} = {(n + 1) * 1.5:.2f} EUR" for n in range(30)]
            for p in range(pages)
        ]
        (folder / "pdfs" / f"{i}.pdf").write_bytes(module.pdf_bytes(content))
        rows.append(f"{i},pdfs/{i}.pdf")
    (folder / "in.csv").write_text("\n".join(rows) + "\n")
    (folder / "invoice.py").write_text(SCHEMA)


def time_pages(folder: Path, what: str, reps: int) -> None:
    """Child: seconds per page of reading the text layer, or of rendering at 100 dpi; JSON out."""
    from extract.documents import pdf

    files = sorted((folder / "pdfs").glob("*.pdf"))
    blobs = [f.read_bytes() for f in files]
    if what == "render":
        blobs = blobs[:20]  # rendering is the slow one: 20 PDFs are plenty for a steady figure
    per_page, png_bytes = [], 0
    for _ in range(reps):
        pages = 0
        started = time.perf_counter()
        for i, data in enumerate(blobs):
            with pdf.open_pdf(data, str(i)) as doc:
                numbers = list(range(1, pdf.page_count(doc) + 1))
                if what == "text":
                    pdf.page_texts(doc, numbers)
                else:
                    png_bytes = sum(len(pdf.render_png(doc, n, 100)) for n in numbers)
                pages += len(numbers)
        per_page.append((time.perf_counter() - started) / pages)
    print(json.dumps({"s_per_page": statistics.median(per_page), "png_bytes_last": png_bytes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=200)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, folder = args.child[0], Path(args.child[1])
        if role == "make":
            make(folder, args.pdfs, args.pages)
        else:
            time_pages(folder, role, args.reps)
        return

    me = [PYTHON, str(Path(__file__).resolve())]
    opts = ["--pdfs", str(args.pdfs), "--pages", str(args.pages), "--reps", str(args.reps)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        subprocess.run([*me, *opts, "--child", "make", tmp], check=True, env=child_env())
        size = sum(f.stat().st_size for f in (d / "pdfs").glob("*.pdf")) / args.pdfs
        timings = {}
        for role in ("text", "render"):
            out = subprocess.run(
                [*me, *opts, "--child", role, tmp],
                check=True,
                capture_output=True,
                text=True,
                env=child_env(),
            ).stdout
            timings[role] = json.loads(out)
        runs = {}
        with Server(ServerSpec()) as server:
            for mode in ("text", "images"):
                p = d / f"p_{mode}.yaml"
                p.write_text(PIPELINE.format(mode=mode, base_url=server.base_url))
                usage = run_child(
                    [EXTRACT, "run", str(p), "-q"], log=d / f"{mode}.log", timeout=1800
                )
                if usage.exit_code != 0:
                    sys.exit(f"extract run ({mode}) exited {usage.exit_code}: "
                             f"{(d / f'{mode}.log').read_text()[-2000:]}")  # fmt: skip
                runs[mode] = (usage, server.stats()["total_requests"])
                server.reset()

    pages = args.pdfs * args.pages
    each = f"{size / 1024:.1f} KB each"
    print(f"{args.pdfs} PDFs of {args.pages} pages ({each}), PDFium via pypdfium2\n")
    print("| step | seconds per page | pages per second |")
    print("| --- | ---: | ---: |")
    for role, label in (("text", "text layer"), ("render", "render at 100 dpi + PNG")):
        s = timings[role]["s_per_page"]
        print(f"| {label} | {s:.5f} | {1 / s:.0f} |")
    png = timings["render"]["png_bytes_last"] / args.pages / 1024
    print(f"\nA page image at 100 dpi: {png:.0f} KB of PNG.\n")
    print("| extract run (test server) | rows | pages | requests | seconds | CPU s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, (u, requests) in runs.items():
        print(
            f"| as: {mode} | {args.pdfs} | {pages} | {requests} | {u.wall_s:.1f} | {u.cpu_s:.1f} "
            f"| {u.peak_rss_mb:.0f} |"
        )


if __name__ == "__main__":
    main()
