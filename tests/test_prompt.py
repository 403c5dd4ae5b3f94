from __future__ import annotations

import base64
from pathlib import Path

import pytest

from extract.config import PromptConfig
from extract.errors import ConfigError, RowInputError
from extract.prompt import Prompt, fingerprint

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def make(
    user: str, system: str | None = None, images: list[str] | None = None, base: Path = Path(".")
) -> Prompt:
    cfg = PromptConfig(user=user, system=system, images=images or [])
    return Prompt(cfg, columns=["id", "text", "photo"], where="p.yaml", image_base=base)


def test_render_text() -> None:
    p = make("Ticket {id}:\n{text} {{literal}}", system="Sys {id}")
    assert p.messages({"id": 7, "text": "hello", "photo": None}, 7) == [
        {"role": "system", "content": "Sys 7"},
        {"role": "user", "content": "Ticket 7:\nhello {literal}"},
    ]


def test_null_renders_empty() -> None:
    assert make("[{text}]").messages({"text": None}, 1) == [{"role": "user", "content": "[]"}]


def test_unknown_column_lists_columns() -> None:
    with pytest.raises(ConfigError) as e:
        make("{body}")
    assert (
        str(e.value)
        == "p.yaml:prompt.user: unknown column(s) 'body'; the source has: id, text, photo"
    )


def test_placeholder_must_be_plain() -> None:
    with pytest.raises(
        ConfigError, match=r"placeholder \{text.upper\} must be a plain column name"
    ):
        make("{text.upper}")


def test_images_local_url_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    p = make("Look", images=["photo"], base=tmp_path)
    msgs = p.messages({"photo": "a.png"}, 1)
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert msgs == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    assert p.messages({"photo": "https://x.test/i.jpg"}, 1)[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x.test/i.jpg"},
    }
    assert p.messages({"photo": ""}, 1) == [{"role": "user", "content": "Look"}]
    with pytest.raises(RowInputError, match=r"image column 'photo': cannot read b\.png") as e:
        p.messages({"photo": "b.png"}, 5)
    assert e.value.row_key == 5
    (tmp_path / "c.png").write_bytes(b"not an image")
    with pytest.raises(RowInputError, match=r"c\.png is not a png, jpeg, webp or gif image"):
        p.messages({"photo": "c.png"}, 6)


def test_image_bytes_count_in_hash(tmp_path: Path) -> None:
    p = make("Look", images=["photo"], base=tmp_path)
    (tmp_path / "a.png").write_bytes(PNG)
    h1 = fingerprint(p.messages({"photo": "a.png"}, 1), b"t")
    assert fingerprint(p.messages({"photo": "a.png"}, 1), b"t") == h1
    assert fingerprint(p.messages({"photo": "a.png"}, 1), b"other model")[0] == h1[0]
    assert fingerprint(p.messages({"photo": "a.png"}, 1), b"other model")[1] != h1[1]
    (tmp_path / "a.png").write_bytes(PNG + b"\x01")
    h2 = fingerprint(p.messages({"photo": "a.png"}, 1), b"t")
    assert h2[0] != h1[0] and h2[1] != h1[1]


def test_fingerprint_is_the_hash_every_earlier_ledger_keys_its_cache_by() -> None:
    # The bytes hashed are those json.dumps(separators=(",", ":"), ensure_ascii=False,
    # sort_keys=True) wrote before orjson replaced it; a change would make every cached
    # answer miss and every output row look changed. The figures were computed with json.
    messages = [
        {"role": "system", "content": 'Zurück\tß "q" \\ \u2028 😀\x01'},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "été\n"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}},
            ],
        },
    ]
    assert fingerprint(messages, b"digest") == (
        "680cf584e5bfb500",
        "fac3cb6a3851ecc8651e81c76d3c7eb1",
        189,
    )


def test_text_that_is_not_unicode_is_a_row_error() -> None:
    # YAML's "\udc80" escape gives a lone surrogate, which no JSON body can carry
    with pytest.raises(RowInputError, match="the prompt cannot be sent as UTF-8 JSON"):
        fingerprint([{"role": "system", "content": "a\udc80"}], b"t")
