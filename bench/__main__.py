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

from bench import pipeline, print_batch, render

RESULTS = Path(__file__).resolve().parent / "results"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="postroom bench")
    for column in ("case", "n", "docs/s", "mean ms", "p50 ms", "p95 ms", "notes"):
        table.add_column(column, justify="left" if column in ("case", "notes") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["count"]),
            f"{row['docs_per_second']:.1f}",
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
                    "file_mb",
                )
                if key in row
            ),
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
        "--print-pieces",
        type=_sizes,
        default="1000,10000",
        help="print batch sizes to build, comma separated (each in a fresh process)",
    )
    args = parser.parse_args()

    console = Console(width=150)
    rows = render.run(args.renders, args.engine_renders)
    rows.append(pipeline.run(args.documents, args.worker_processes, args.worker_threads))
    rows += print_batch.run(args.print_pieces)
    console.print(_table(rows))
    RESULTS.mkdir(exist_ok=True)
    at = datetime.now(UTC)
    report = {
        "at": at.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": rows,
    }
    for path in (RESULTS / f"bench-{at:%Y%m%dT%H%M%SZ}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    console.print(f"written to {os.path.relpath(RESULTS / 'latest.json')}")


if __name__ == "__main__":
    main()
