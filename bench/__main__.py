"""``make bench``: print a table of throughput figures and write them as JSON to ``bench/results/``."""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import bulk, chromium, pipeline, print_batch, render, report

RESULTS = Path(__file__).resolve().parent / "results"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="postroom bench")
    for column in ("case", "n", "docs/s", "docs/CPU-s", "mean ms", "p50 ms", "p95 ms", "notes"):
        table.add_column(column, justify="left" if column in ("case", "notes") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["count"]),
            f"{row['docs_per_second']:.1f}",
            f"{row['docs_per_cpu_second']:.1f}" if "docs_per_cpu_second" in row else "",
            f"{row['mean_ms']:.2f}" if "mean_ms" in row else "",
            f"{row['p50_ms']:.1f}" if row.get("p50_ms") is not None else "",
            f"{row['p95_ms']:.1f}" if row.get("p95_ms") is not None else "",
            ", ".join(
                f"{key}={row[key]:.1f}" if isinstance(row[key], float) else f"{key}={row[key]}"
                for key in (
                    "pages",
                    "sheets",
                    "delivered",
                    "emails",
                    "total_seconds",
                    "peak_rss_mb",
                    "peak_rss_api_mb",
                    "peak_rss_worker_mb",
                    "ratio_to_chromium",
                    "file_mb",
                )
                if key in row
            ),
        )
    return table


def issue_targets(rows: list[dict[str, Any]], bulk_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures the benchmark is held to, each with its target."""

    def row(prefix: str) -> dict[str, Any]:
        return next(r for r in rows if r["name"].startswith(prefix))

    typst = row("cpu: reference invoice (typst, plain")
    archive = row("cpu: reference invoice (typst, archive")
    pure = row("render reference_invoice (typst, archive + print), 2 processes")
    small, large, single = bulk_rows[0], bulk_rows[-2], bulk_rows[-1]
    two_processes = pure["docs_per_second"]
    return [
        {
            "figure": "Typst vs Chromium, docs per CPU-second, plain PDF each",
            "value": typst["ratio_to_chromium"],
            "target": ">= 3.0",
            "met": typst["ratio_to_chromium"] >= 3.0,
        },
        {
            "figure": "Typst's archive variant (PDF/A-3b + XML) vs Chromium's plain PDF",
            "value": archive["ratio_to_chromium"],
            "target": "(for reference)",
            "met": None,
        },
        {
            "figure": f"bulk run of {large['count']} vs two processes' pure rendering "
            f"({two_processes:.1f} docs/s)",
            "value": large["docs_per_second"] / two_processes,
            "target": ">= 0.85",
            "met": large["docs_per_second"] / two_processes >= 0.85,
        },
        {
            "figure": f"worker RSS growth, {small['count']} to {large['count']} documents (MB)",
            "value": large["peak_rss_worker_mb"] - small["peak_rss_worker_mb"],
            "target": "< 50",
            "met": large["peak_rss_worker_mb"] - small["peak_rss_worker_mb"] < 50,
        },
        {
            "figure": f"two worker processes vs one, {large['count']} documents",
            "value": large["docs_per_second"] / single["docs_per_second"],
            "target": ">= 1.8",
            "met": large["docs_per_second"] / single["docs_per_second"] >= 1.8,
        },
    ]


def _targets_table(targets: list[dict[str, Any]]) -> Table:
    table = Table(title="targets")
    for column in ("figure", "value", "target", "met"):
        table.add_column(column)
    for target in targets:
        table.add_row(
            target["figure"], f"{target['value']:.2f}", target["target"], report.met_label(target["met"])
        )
    return table


def _sizes(text: str) -> list[int]:
    """``1000,10000`` as a list of positive sizes."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from error
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=200, help="renders per Typst rendering case")
    parser.add_argument("--engine-renders", type=int, default=20, help="renders per HTML and DOCX case")
    parser.add_argument("--documents", type=int, default=300, help="documents through the whole pipeline")
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument(
        "--cpu-renders", type=int, default=100, help="renders per engine for docs per CPU-second"
    )
    parser.add_argument(
        "--bulk",
        type=_sizes,
        default="1000,10000",
        help="bulk run sizes with two worker processes; the last is also run with one",
    )
    parser.add_argument(
        "--bulk-threads", type=int, default=1, help="threads per worker process in the bulk runs"
    )
    parser.add_argument(
        "--print-pieces",
        type=_sizes,
        default="1000,10000",
        help="print batch sizes to build, comma separated (each in a fresh process)",
    )
    args = parser.parse_args()

    console = Console(width=170)
    rows = render.run(args.renders, args.engine_renders)
    rows.append(render.parallel(args.renders, processes=2))
    rows += chromium.run(args.cpu_renders)
    rows.append(pipeline.run(args.documents, args.worker_processes, args.worker_threads))
    bulk_rows = [bulk.run(size, processes=2, threads=args.bulk_threads) for size in args.bulk]
    # One worker against two on the largest run: a run ends with a few seconds of print cut-off,
    # acknowledgement and settling whatever its size, which a small run's rate would carry.
    bulk_rows.append(bulk.run(args.bulk[-1], processes=1, threads=args.bulk_threads))
    rows += bulk_rows + print_batch.run(args.print_pieces)
    targets = issue_targets(rows, bulk_rows)
    console.print(_table(rows))
    RESULTS.mkdir(exist_ok=True)
    at = datetime.now(UTC)
    summary = {
        "at": at.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": rows,
        "targets": targets,
    }
    for path in (RESULTS / f"bench-{at:%Y%m%dT%H%M%SZ}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    written = report.write(rows, RESULTS, f"bench-{at:%Y%m%dT%H%M%SZ}", targets)
    console.print(_targets_table(targets))
    console.print(
        f"written to {os.path.relpath(RESULTS / 'latest.json')}, {os.path.relpath(written['markdown'])}"
    )


if __name__ == "__main__":
    main()
