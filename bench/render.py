"""Rendering throughput of the shipped templates with a warm engine, one thread."""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from postroom.documents.catalogue import document_type
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer
from postroom.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
TIMESTAMP = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _timings(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "docs_per_second": len(seconds) / sum(seconds),
        "mean_ms": statistics.fmean(seconds) * 1000,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
    }


def bench_render(example: str, variant: Variant, count: int) -> dict[str, Any]:
    """Validate, build the context and render ``example`` ``count`` times after one warm-up.

    Each round carries a new document number: Typst memoises unchanged inputs, and a
    bench that renders identical data measures that cache, not rendering.
    """
    body = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    doc_type = document_type(body["type"])
    renderer = Renderer.for_folder(PROJECT_ROOT / "templates")
    renderer.render(doc_type, doc_type.parse(body), [variant], timestamp=TIMESTAMP)
    seconds, pages = [], 0
    for index in range(count):
        body["data"]["number"] = f"RE-BENCH-{index:06d}"
        started = time.perf_counter()
        request = doc_type.parse(body)
        rendering = renderer.render(doc_type, request, [variant], timestamp=TIMESTAMP)
        seconds.append(time.perf_counter() - started)
        pages = rendering.pdfs[variant].pages
    return {"name": f"render {example} ({variant})", "count": count, "pages": pages, **_timings(seconds)}


def run(count: int) -> list[dict[str, Any]]:
    """Every rendering case."""
    return [
        bench_render("invoice", "email", count),
        bench_render("reference_invoice", "email", count),
        bench_render("reference_invoice", "archive", count),
    ]
