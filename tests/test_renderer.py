"""Template store and Typst engine: versions, content hashes and the sandbox."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postroom.renderer.engine import TemplateError
from postroom.renderer.templates import TemplateStore
from postroom.renderer.typst import TypstEngine, empty_package_folder

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def make_template(root: Path, source: str, *, version: int = 1, name: str = "letter") -> None:
    folder = root / name / "typst"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(
        f'id = "{name}"\nversion = {version}\nengine = "typst"\nentry = "main.typ"\n', encoding="utf-8"
    )
    (folder / "main.typ").write_text(source, encoding="utf-8")


def render(root: Path, ref: str = "letter", context: dict[str, object] | None = None) -> bytes:
    store = TemplateStore(root)
    engine = TypstEngine(store.fonts)
    return engine.render(store.resolve(ref), context or {}, "email", timestamp=NOW)


def test_context_arrives_as_data_not_markup(tmp_path: Path) -> None:
    make_template(tmp_path, "#let ctx = json(bytes(sys.inputs.context))\n#ctx.name / #ctx.variant\n")
    pdf = render(tmp_path, context={"name": '#read("/etc/passwd") *bold* ]'})
    assert pdf.startswith(b"%PDF")


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    make_template(tmp_path, "#let ctx = json(bytes(sys.inputs.context))\n#ctx.name\n")
    assert render(tmp_path, context={"name": "a"}) == render(tmp_path, context={"name": "a"})


def test_templates_cannot_read_outside_their_root(tmp_path: Path) -> None:
    make_template(tmp_path, '#read("../../../../../../etc/passwd")\n')
    with pytest.raises(TemplateError, match="failed to compile"):
        render(tmp_path)


def test_absolute_paths_stay_inside_the_root(tmp_path: Path) -> None:
    make_template(tmp_path, '#read("/etc/passwd")\n')
    with pytest.raises(TemplateError, match="failed to compile"):
        render(tmp_path)


def test_package_imports_are_refused_before_any_download(tmp_path: Path) -> None:
    make_template(tmp_path, '#import "@preview/tablex:0.0.8": tablex\nhello\n')
    with pytest.raises(TemplateError, match="may not fetch packages"):
        render(tmp_path)


def test_engines_share_one_empty_package_folder_that_nothing_plants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = empty_package_folder()
    assert first == empty_package_folder()
    assert first.parent == tmp_path
    assert not any(first.iterdir())
    # Something else under that name (a file, a folder with content) is not used.
    first.rmdir()
    first.write_text("planted", encoding="utf-8")
    fresh = empty_package_folder()
    assert fresh != first
    assert fresh.is_dir()
    assert not any(fresh.iterdir())


def test_compile_errors_do_not_quote_data(tmp_path: Path) -> None:
    make_template(tmp_path, "#let ctx = json(bytes(sys.inputs.context))\n#panic(ctx.name)\n")
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, context={"name": "Erika Mustermann"})
    assert "Mustermann" not in str(caught.value)


def test_version_pinning_and_unknown_templates(tmp_path: Path) -> None:
    make_template(tmp_path, "hello\n", version=3)
    store = TemplateStore(tmp_path)
    assert store.resolve("letter@3").version == 3
    with pytest.raises(TemplateError, match="version 2 is not available"):
        store.resolve("letter@2")
    with pytest.raises(TemplateError, match="no template 'memo'"):
        store.resolve("memo")


def test_content_hash_covers_shared_files_and_fonts(tmp_path: Path) -> None:
    make_template(tmp_path, "hello\n")
    first = TemplateStore(tmp_path).resolve("letter").sha256
    (tmp_path / "_shared" / "typst").mkdir(parents=True)
    (tmp_path / "_shared" / "typst" / "letter.typ").write_text("#let x = 1\n", encoding="utf-8")
    second = TemplateStore(tmp_path).resolve("letter").sha256
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "Some.otf").write_bytes(b"font")
    third = TemplateStore(tmp_path).resolve("letter").sha256
    assert len({first, second, third}) == 3


def test_manifest_must_match_its_folder(tmp_path: Path) -> None:
    make_template(tmp_path, "hello\n")
    manifest = tmp_path / "letter" / "typst" / "template.toml"
    manifest.write_text(manifest.read_text().replace('id = "letter"', 'id = "memo"'), encoding="utf-8")
    with pytest.raises(TemplateError, match="must live in memo/typst/"):
        TemplateStore(tmp_path).resolve("letter")


def test_a_broken_template_fails_alone(tmp_path: Path) -> None:
    make_template(tmp_path, "hello\n")
    make_template(tmp_path, "hello\n", name="memo")
    (tmp_path / "memo" / "typst" / "main.typ").unlink()
    store = TemplateStore(tmp_path)
    assert store.resolve("letter").id == "letter"
    with pytest.raises(TemplateError, match=r"entry file main\.typ is missing"):
        store.resolve("memo")


@pytest.mark.parametrize(
    "source",
    [
        '#image("http://127.0.0.1:9/logo.png")\n',
        '#image("https://example.org/logo.png")\n',
        '#read("file:///etc/passwd")\n',
    ],
)
def test_templates_cannot_reach_the_network(tmp_path: Path, source: str) -> None:
    make_template(tmp_path, source)
    with pytest.raises(TemplateError, match="failed to compile"):
        render(tmp_path)
