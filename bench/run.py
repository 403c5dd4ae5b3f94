"""Benchmark `extract run` against the floor (bare aiohttp), instructor and the openai SDK.

    .venv/bin/python bench/run.py [--scenario cpu|throughput|faults|memory|all] [--reps 3]
                                  [--rows N] [--clients extract,floor,instructor,openai]
                                  [--sizes 10000,100000,1000000]

Starts the project's test server (its own process) with the scenario's latency and fault mix,
writes the rows into a temporary folder, then runs the clients one after another against that
server, each as its own process, each repetition in turn. Prints one markdown table per scenario
with medians and the ratio of each figure to the floor. Progress goes to stderr. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data
from bench.measure import PYTHON, ROOT, Server, ServerSpec, Usage, child_env, run_child
from bench.report import (
    Measure,
    Summary,
    client_table,
    memory_table,
    startup_table,
    verdict,
)

ALL_CLIENTS = ("extract", "floor", "instructor", "openai")
#: the real `extract` command: the console script beside this interpreter (the venv's), else PATH's
EXTRACT = next(
    (str(c) for c in (Path(PYTHON).parent / "extract",) if c.exists()),
    shutil.which("extract") or "extract",
)
FAULT_MIX = {"rate_limit": 0.10, "server_error": 0.05, "malformed": 0.10, "invalid": 0.05,
             "drop": 0.02}  # fmt: skip
#: seconds the server asks a client to wait after a 429: small, so the scenario ends quickly,
#: and above 0 so the openai SDK honours it too (it ignores Retry-After: 0 and backs off itself)
RETRY_AFTER = "1"


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    server: ServerSpec
    concurrency: int
    rows: int

    @property
    def limit(self) -> float | None:
        """Little's law: rows/s at most = requests in flight / mean latency (one request a row)."""
        mean_s = self.server.latency_ms / 1000
        return self.concurrency / mean_s if mean_s else None


SCENARIOS = {
    "cpu": Scenario("cpu", "client CPU cost", ServerSpec(), 64, 5000),
    "throughput": Scenario(
        "throughput", "throughput against the Little's-law limit",
        ServerSpec(latency_ms=200, jitter_ms=50), 128, 5000,
    ),
    "faults": Scenario(
        "faults", "requests per valid row and rows lost under faults",
        ServerSpec(faults=FAULT_MIX, retry_after=RETRY_AFTER), 64, 2000,
    ),
}  # fmt: skip
MEMORY = Scenario("memory", "peak RSS against input size", ServerSpec(), 64, 0)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Workspace:
    """One scenario's folder: rows, compiled response_format, pipeline, outputs and logs."""

    folder: Path
    rows_csv: Path
    rows: int
    concurrency: int
    base_url: str
    pipelines: dict[str, Path] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return self.folder / "out.duckdb"


def prepare_folder(folder: Path) -> None:
    """Compile the response_format once (in a child: it imports extract)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [PYTHON, "-m", "bench.common", "compile", str(folder / "response_format.json")],
        check=True, cwd=ROOT, env=child_env(),
    )  # fmt: skip


def client_command(client: str, ws: Workspace, source: str = "csv") -> list[str]:
    if client == "extract":
        return [EXTRACT, "run", str(ws.pipelines[source])]
    module = {"floor": "bench.floor", "instructor": "bench.peer_instructor",
              "openai": "bench.peer_openai"}[client]  # fmt: skip
    return [
        PYTHON, "-m", module, "--base-url", ws.base_url, "--rows", str(ws.rows_csv),
        "--concurrency", str(ws.concurrency), "--out", str(ws.folder / f"outcome-{client}.json"),
    ]  # fmt: skip


def client_outcome(client: str, ws: Workspace) -> dict[str, float]:
    """valid, errors, duplicates and run seconds, as the client's own output says."""
    if client == "extract":
        if not ws.output.exists():
            return {"valid": 0, "errors": 0, "duplicates": 0, "run_s": 0.0}
        # Read back from the output database itself, in a child (duckdb stays out of this process).
        out = subprocess.run(
            [PYTHON, "-m", "bench.data", "count-output", str(ws.output)],
            check=True, capture_output=True, text=True, env=child_env(),
        )  # fmt: skip
        counted: dict[str, float] = json.loads(out.stdout)
        return counted
    path = ws.folder / f"outcome-{client}.json"
    if not path.exists():
        return {"valid": 0, "errors": 0, "duplicates": 0, "run_s": 0.0}
    outcome = json.loads(path.read_text())
    return {"valid": outcome["valid"], "errors": outcome["errors"], "duplicates": 0,
            "run_s": outcome["run_s"]}  # fmt: skip


def server_counts(server: Server) -> tuple[int, int]:
    """Total requests and distinct rows asked about, from GET /stats, without holding it whole.

    With a million rows `requests_by_row` is tens of MB of JSON; parsing it here would raise this
    process's RSS and with it every later child's ru_maxrss (see measure.py).
    """
    import urllib.request

    root = server.base_url.removesuffix("/v1")
    with urllib.request.urlopen(root + "/stats", timeout=60) as resp:
        head = b""
        while b'"requests_by_row"' not in head:
            chunk = resp.read(65536)
            if not chunk:
                break
            head += chunk
        prefix, _, rest = head.partition(b'"requests_by_row"')
        total = int(re.search(rb'"total_requests":\s*(\d+)', prefix).group(1))  # type: ignore[union-attr]
        # Each row is one `"hex": count` entry; count the colons up to the closing brace.
        rows, tail = 0, rest.partition(b"{")[2]
        while True:
            body, closed, _ = tail.partition(b"}")
            rows += body.count(b":")
            if closed:
                break
            tail = resp.read(65536)
            if not tail:
                break
    return total, rows


def measure(
    client: str, ws: Workspace, server: Server, source: str = "csv", *, fresh: bool = True
) -> Measure:
    server.reset()
    if client == "extract" and fresh:
        # Each run starts from nothing: the output file is also extract's ledger and cache, and
        # a second run over the same rows would rightly send no request at all.
        for path in ws.output.parent.glob(ws.output.name + "*"):
            path.unlink()
    cpu_before = server.cpu_seconds()
    usage: Usage = run_child(
        client_command(client, ws, source),
        log=ws.folder / f"{client}-{source}.log",
        timeout=120 + ws.rows * 0.02,
    )
    server_cpu = server.cpu_seconds() - cpu_before
    requests, asked = server_counts(server) if ws.rows else (0, 0)
    out = client_outcome(client, ws)
    m = Measure(
        client=client, rows=ws.rows, wall_s=usage.wall_s,
        run_s=float(out["run_s"] or usage.wall_s), cpu_s=usage.cpu_s,
        peak_rss_mb=usage.peak_rss_mb, requests=requests, rows_asked=asked,
        valid=int(out["valid"]), errors=int(out["errors"]), duplicates=int(out["duplicates"]),
        exit_code=usage.exit_code, server_cpu_s=server_cpu,
    )  # fmt: skip
    if usage.exit_code not in (0, 3):
        log(f"  {client} exited {usage.exit_code}; see {ws.folder / f'{client}-{source}.log'}")
    return m


def workspace(root: Path, name: str, rows: int, concurrency: int, base_url: str) -> Workspace:
    folder = root / name
    prepare_folder(folder)
    csv_path = data.write_csv(folder / "rows.csv", rows)
    ws = Workspace(folder, csv_path, rows, concurrency, base_url)
    ws.pipelines["csv"] = data.write_pipeline(
        folder, base_url=base_url, source=csv_path, concurrency=concurrency, output=ws.output
    )
    return ws


def startup(root: Path, clients: Sequence[str]) -> list[str]:
    """What each client costs to start and stop on 0 rows (imports, config, opening files)."""
    rows: list[tuple[str, float, float, float]] = []
    with Server(ServerSpec()) as server:
        ws = workspace(root, "startup", 0, 8, server.base_url)
        empty = run_child([PYTHON, "-c", "pass"], log=ws.folder / "empty.log", timeout=60)
        rows.append(("empty interpreter (`python -c pass`)", empty.wall_s, empty.cpu_s,
                     empty.peak_rss_mb))  # fmt: skip
        for client in clients:
            m = measure(client, ws, server)
            rows.append((client, m.wall_s, m.cpu_s, m.peak_rss_mb))
    return startup_table(rows)


def run_scenario(scn: Scenario, root: Path, clients: Sequence[str], reps: int) -> list[str]:
    runs: dict[str, list[Measure]] = {c: [] for c in clients}
    with Server(scn.server) as server:
        ws = workspace(root, scn.name, scn.rows, scn.concurrency, server.base_url)
        for rep in range(1, reps + 1):
            for client in clients:
                m = measure(client, ws, server)
                runs[client].append(m)
                log(
                    f"[{scn.name}] rep {rep}/{reps} {client}: {m.wall_s:.1f} s wall, "
                    f"{m.rows_per_s:.0f} rows/s, cpu {m.cpu_per_1k:.3f} s/1k, "
                    f"rss {m.peak_rss_mb:.0f} MB, {m.requests} requests, {m.valid} valid, "
                    f"{m.errors} errors, {m.lost} lost"
                )
        rerun = measure("extract", ws, server, fresh=False) if "extract" in clients else None
    summaries = [Summary.of(runs[c]) for c in clients]
    spec = scn.server
    faults = ", ".join(f"{k} {v:.0%}" for k, v in spec.faults.items()) or "none"
    lines = [
        f"### {scn.name}: {scn.what}",
        "",
        f"Server latency {spec.latency_ms:g} ms +- {spec.jitter_ms:g} ms, faults: {faults}"
        + (f" (Retry-After: {spec.retry_after} s on 429)" if spec.faults else "")
        + f"; concurrency {scn.concurrency}; {scn.rows:,} rows; median of {reps} repetition(s); "
        "(x) is the ratio to the floor.",
        "",
        *client_table(summaries, limit=scn.limit),
        "",
        *goals(scn, summaries),
    ]
    extra = [
        f"{s.client}: {s.bad_exit} run(s) exited with an unexpected code"
        for s in summaries
        if s.bad_exit
    ]
    extra += [
        f"{s.client}: {s.duplicates_max} duplicate row(s)" for s in summaries if s.duplicates_max
    ]
    extra += [
        f"{s.client}: the server saw requests for only {s.rows_asked_min:,} distinct rows"
        for s in summaries
        if s.rows_asked_min != scn.rows
    ]
    lines += [f"- {e}" for e in extra]
    if rerun is not None:
        lines.append(
            f"- never pay twice: `extract run` again over the same output sent {rerun.requests} "
            f"request(s) and kept {rerun.valid:,} valid + {rerun.errors:,} in errors "
            f"({rerun.lost} lost), {verdict(rerun.requests == 0 and rerun.lost == 0)}"
        )
    server_cpu = ", ".join(f"{s.client} {s.server_cpu_s:.1f} s" for s in summaries)
    lines += [f"- test-server CPU during each client's run (median): {server_cpu}", ""]
    return lines


def goals(scn: Scenario, summaries: Sequence[Summary]) -> list[str]:
    by = {s.client: s for s in summaries}
    ext, floor = by.get("extract"), by.get("floor")
    out: list[str] = []
    if ext is None:
        return out
    if scn.name == "cpu" and floor is not None:
        r = ext.cpu_per_1k / floor.cpu_per_1k
        out.append(f"- goal CPU per row <= 1.5x the floor: {r:.2f}x, {verdict(r <= 1.5)}")
    if scn.name == "throughput" and scn.limit:
        share = ext.rows_per_s / scn.limit
        wall_share = scn.rows / ext.wall_s / scn.limit
        out.append(
            f"- goal >= 95% of the Little's-law limit: {share:.1%} over the run "
            f"({wall_share:.1%} over the whole process, start-up included), "
            f"{verdict(share >= 0.95)}"
        )
    if scn.name == "faults" and floor is not None:
        r = ext.requests_per_valid / floor.requests_per_valid
        out.append(
            f"- goal requests per valid row within 2% of the floor's: {r:.3f}x, "
            f"{verdict(abs(r - 1) <= 0.02)}"
        )
    out.append(f"- goal 0 rows lost: {ext.lost_max} lost, {verdict(ext.lost_max == 0)}")
    return out


def run_memory(root: Path, sizes: Sequence[int]) -> list[str]:
    rows: list[tuple[str, Measure]] = []
    with Server(MEMORY.server) as server:
        for size in sizes:
            ws = workspace(root, f"memory-{size}", size, MEMORY.concurrency, server.base_url)
            db = ws.folder / "rows.duckdb"
            subprocess.run(
                [PYTHON, "-m", "bench.data", "to-duckdb", str(ws.rows_csv), str(db)],
                check=True, env=child_env(),
            )  # fmt: skip
            ws.pipelines["duckdb"] = data.write_pipeline(
                ws.folder, base_url=server.base_url, source=db, source_type="duckdb",
                concurrency=MEMORY.concurrency, output=ws.output,
            )  # fmt: skip
            for source in ("csv", "duckdb"):
                m = measure("extract", ws, server, source)
                rows.append((source, m))
                log(
                    f"[memory] {source} {size:,} rows: {m.wall_s:.1f} s, "
                    f"rss {m.peak_rss_mb:.0f} MB, {m.valid} valid, {m.lost} lost"
                )
            shutil.rmtree(ws.folder, ignore_errors=True)
    lines = [
        "### memory: extract's peak RSS against input size",
        "",
        f"Server latency 0 ms, no faults; concurrency {MEMORY.concurrency}; one repetition; "
        "CSV and DuckDB-table sources.",
        "",
        *memory_table(rows),
        "",
    ]
    for source in ("csv", "duckdb"):
        rss = [m.peak_rss_mb for s, m in rows if s == source]
        if len(rss) > 1:
            growth = max(rss) / min(rss) - 1
            flat = growth <= 0.20 and max(rss) < 400
            lines.append(
                f"- goal {source}: peak RSS flat within 20% and under 400 MB: "
                f"{min(rss):.0f}-{max(rss):.0f} MB (+{growth:.0%}), {verdict(flat)}"
            )
    lost = sum(m.lost for _, m in rows)
    lines += [f"- goal 0 rows lost: {lost} lost, {verdict(lost == 0)}", ""]
    return lines


def header(clients: Sequence[str]) -> list[str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        "## extract benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average at start {load}. "
        f"extract {version('extract')}, aiohttp {version('aiohttp')}, "
        f"openai {version('openai')}, instructor {version('instructor')}. Clients: "
        f"{', '.join(clients)}.",
        "",
        "The test server (extract/testserver.py) runs in its own process and takes one of the "
        "cores; each client runs alone as its own process. CPU is the client process's user + "
        "sys time and peak RSS its ru_maxrss, both from os.wait4, start-up included (shown "
        "apart below). *run s* is the client's own timing of its run (extract: `_extract_runs` "
        "started_at to ended_at); rows/s and the share of the Little's-law limit "
        "(concurrency / mean latency) use it. Requests are counted by the server; valid, in "
        "errors and lost are read from each client's output (extract: its DuckDB tables).",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scenario", default="all",
                        choices=["cpu", "throughput", "faults", "memory", "all"])  # fmt: skip
    parser.add_argument("--reps", type=int, default=3, help="repetitions (memory: always 1)")
    parser.add_argument("--rows", type=int, help="rows for cpu/throughput/faults")
    parser.add_argument("--clients", default=",".join(ALL_CLIENTS),
                        help="comma-separated subset of " + ",".join(ALL_CLIENTS))  # fmt: skip
    parser.add_argument("--sizes", default="10000,100000,1000000", help="memory scenario rows")
    parser.add_argument("--no-startup", action="store_true", help="skip the 0-row start-up runs")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(clients) - set(ALL_CLIENTS))
    if unknown or not clients:
        parser.error(f"unknown client(s) {unknown}; choose from {', '.join(ALL_CLIENTS)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    names = [*SCENARIOS, "memory"] if args.scenario == "all" else [args.scenario]

    root = args.workdir or Path(tempfile.mkdtemp(prefix="extract-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print("\n".join(header(clients)), flush=True)
        for name in names:
            if name == "memory":
                lines = run_memory(root, sizes)
            else:
                scn = SCENARIOS[name]
                if args.rows:
                    scn = Scenario(scn.name, scn.what, scn.server, scn.concurrency, args.rows)
                lines = run_scenario(scn, root, clients, args.reps)
            print("\n".join(lines), flush=True)
        if not args.no_startup:
            measured = ["extract"] if names == ["memory"] else clients
            print("### start-up: each client on 0 rows\n", flush=True)
            print("\n".join([*startup(root, measured), ""]), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
