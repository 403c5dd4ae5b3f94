"""The same rows through the local engine and through run.engine ray, on this machine: rows per
second and CPU seconds of each.

    .venv/bin/python bench/ray_engine.py [--rows 20000] [--latency-ms 200] [--concurrency 128]
                                         [--workers 2] [--cpus 2]

The test server runs in its own process with the given latency (its CPU is not counted). Each
engine runs the real `extract run` command once. For the ray engine, this script starts a local
Ray instance (`ray.init(num_cpus=...)`, not timed, as a cluster would already be up) and the
command connects to it with `--address`; its CPU is the command's (the driver) plus what every
Ray process (GCS, raylet, workers, the actors and Ray Data's read tasks) spent during the run,
sampled from /proc every 0.2 s while the command runs. Markdown to stdout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import write_csv, write_pipeline
from extract.providers.base import stop_process
from extract.providers.testserver import ServerConfig, start_subprocess

EXTRACT = str(Path(sys.executable).parent / "extract")
TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int, skip: set[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each of `root`'s descendants but `skip`, by pid."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces: the fields after it are fixed
        fields = stat[stat.rindex(")") + 2 :].split()
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    out, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if pid not in skip:
            out[pid] = times.get(pid, 0.0)
    return out


class TreeCpu:
    """The CPU a process tree spends while it is watched, sampled every `every` seconds: a
    process that ends between two samples loses at most that interval's time. Own time only
    (not reaped children's), so that nothing is counted twice."""

    def __init__(self, root: int, skip: set[int], every: float = 0.2):
        self.root, self.skip, self.every = root, skip, every
        self.first = _tree_cpu(root, skip)
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.last.update(_tree_cpu(self.root, self.skip))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.last.update(_tree_cpu(self.root, self.skip))
        return sum(t - self.first.get(pid, 0.0) for pid, t in self.last.items())


def _run(args: list[str], *, watch: int | None, skip: set[int]) -> tuple[float, float, float]:
    """Seconds, the command's CPU seconds, and the CPU seconds of `watch`'s process tree."""
    started = time.perf_counter()
    process = subprocess.Popen([EXTRACT, *args], stdout=subprocess.DEVNULL)
    tree = TreeCpu(watch, skip | {process.pid}) if watch is not None else None
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"extract {' '.join(args)} exited {process.returncode}")
    cluster = tree.stop() if tree is not None else 0.0
    return seconds, usage.ru_utime + usage.ru_stime, cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="ray actors (shards)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()

    import ray

    server, base_url = start_subprocess(ServerConfig(latency_ms=args.latency_ms))
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            rows = write_csv(d / "rows.csv", args.rows)
            p = write_pipeline(
                d,
                base_url=base_url,
                source=rows,
                concurrency=args.concurrency,
                output=d / "out.duckdb",
            )
            print(f"local engine: {args.rows} rows ...", file=sys.stderr)
            seconds, cpu, _ = _run(["run", str(p), "--quiet"], watch=None, skip=set())
            results.append(("local", seconds, cpu, 0.0))
            (d / "out.duckdb").unlink()

            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
            address = ray.get_runtime_context().gcs_address
            print(f"ray engine: {args.rows} rows on {address} ...", file=sys.stderr)
            seconds, cpu, cluster = _run(
                [
                    "run",
                    str(p),
                    "--quiet",
                    "--engine",
                    "ray",
                    "--address",
                    address,
                    "--set",
                    f"run.ray_workers={args.workers}",
                ],
                watch=os.getpid(),
                skip={server.pid},
            )
            results.append((f"ray ({args.workers} actors)", seconds, cpu, cluster))
            ray.shutdown()
    finally:
        stop_process(server)
    print(
        f"{args.rows} rows, {args.latency_ms:g} ms latency, run.concurrency {args.concurrency}, "
        f"{os.cpu_count()} cores\n"
    )
    print("| engine | seconds | rows/s | CPU s: command | CPU s: Ray processes | CPU s in all |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds, cpu, cluster in results:
        print(
            f"| {name} | {seconds:.1f} | {args.rows / seconds:.0f} | {cpu:.1f} | "
            f"{cluster:.1f} | {cpu + cluster:.1f} |"
        )


if __name__ == "__main__":
    main()
