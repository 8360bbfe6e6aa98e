from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from pypdf import PdfReader

from postroom.cli import main
from postroom.settings import Settings, get_settings
from tests.conftest import EXAMPLES


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_render_writes_a_pdf(tmp_path: Path) -> None:
    output = tmp_path / "out.pdf"
    args = [
        "render",
        "invoice",
        str(EXAMPLES / "reference_invoice.json"),
        "-o",
        str(output),
        "--variant",
        "print",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 page(s)" in result.output
    assert len(PdfReader(output).pages) == 2


def test_render_reports_invalid_data_by_field(tmp_path: Path) -> None:
    body = json.loads((EXAMPLES / "invoice.json").read_text(encoding="utf-8"))
    body["data"]["lines"][0]["unit_price"] = "12,50"
    data = tmp_path / "bad.json"
    data.write_text(json.dumps(body), encoding="utf-8")
    result = CliRunner().invoke(main, ["render", "invoice", str(data), "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code == 2
    assert "data.lines.0.unit_price" in result.output
    assert not (tmp_path / "x.pdf").exists()


def test_render_refuses_a_mismatched_type(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["render", "credit_note", str(EXAMPLES / "invoice.json"), "-o", str(tmp_path / "x.pdf")]
    )
    assert result.exit_code == 2
    assert "not 'credit_note'" in result.output


def test_serve_and_worker_need_redis(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.delenv("POSTROOM_REDIS_URL", raising=False)
    for command in ("serve", "worker"):
        result = CliRunner().invoke(main, [command])
        assert result.exit_code == 2
        assert "POSTROOM_REDIS_URL is not set" in result.output


def test_invalid_configuration_is_reported(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("POSTROOM_ARCHIVE_URL", "ftp://archive.example/")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 2
    assert "archive_url must start with file:// or s3://" in result.output


def test_configuration_errors_do_not_echo_secrets(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv(
        "POSTROOM_API_KEYS", '[{"secret": "s3cr3t-value", "id": "erp", "sha256": "%s"}]' % ("0" * 64)
    )
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 2
    assert "POSTROOM_API_KEYS.0" in result.output
    assert "s3cr3t-value" not in result.output
    # Nor does the error itself, wherever a worker or a tool prints its traceback.
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "s3cr3t-value" not in str(error.value)


def test_a_channel_misconfiguration_stops_the_worker_at_start(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("POSTROOM_REDIS_URL", "redis://127.0.0.1:1/0")  # never reached
    fresh_settings.setenv("POSTROOM_DKIM_SELECTOR", "mail2026")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert "invalid channel configuration" in result.output
    assert "POSTROOM_DKIM_DOMAIN" in result.output
