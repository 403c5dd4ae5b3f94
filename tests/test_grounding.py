"""extract.trust.grounding: where each extracted value occurs in the row's input text."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr

from extract.schema import compile_schema
from extract.trust.grounding import (
    FUZZY_CUTOFF,
    Found,
    Texts,
    _fold,
    find_value,
    fold,
    ground,
    groundable_paths,
    path_matches,
    ungrounded_paths,
)
from extract.trust.shape import model_shape


def source(found: Found, texts: Mapping[str, str]) -> str:
    """The source text a Found points at."""
    assert found.column is not None and found.start is not None and found.end is not None
    return texts[found.column][found.start : found.end]


def wide(text: str) -> str:
    """`text` in fullwidth forms (written as escapes would be unreadable, literally ambiguous)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" for c in text)


WIDE_ACME = wide("ACME 123")


def check(value: str | int | float | Decimal, text: str, kind: str = "str") -> tuple[str, str]:
    """(status, matched source text) of `value` in a one-column row."""
    found = find_value(value, {"body": text}, kind=kind)
    if found.status == "none":
        assert found == Found("none", None, None, None)
        return "none", ""
    return found.status, source(found, {"body": text})


# --------------------------------------------------------------------------------------------
# exact


def test_exact_is_the_earliest_occurrence_with_character_offsets() -> None:
    text = "Acme and Acme"
    assert find_value("Acme", {"body": text}) == Found("exact", "body", 0, 4)
    assert find_value("and Acme", {"body": text}) == Found("exact", "body", 5, 13)


def test_exact_beats_normalized_in_an_earlier_column() -> None:
    texts = {"subject": "ACME CORP", "body": "from Acme Corp", "footer": "Acme Corp"}
    assert find_value("Acme Corp", texts) == Found("exact", "body", 5, 14)


def test_a_normalized_match_in_a_later_column_beats_a_fuzzy_one() -> None:
    texts = {"a": "Acme Corporatlon", "b": "ACME CORPORATION"}
    assert find_value("Acme Corporation", texts) == Found("normalized", "b", 0, 16)


def test_the_common_case_reads_nothing_but_str_find() -> None:
    texts = Texts({"a": "Invoice from Acme Corp, total 42 EUR"})
    assert find_value("Acme Corp", texts) == Found("exact", "a", 13, 22)
    assert find_value(42, texts, kind="int") == Found("exact", "a", 30, 32)
    # neither the folded text nor the number tokens were built
    assert vars(texts.columns[0]).keys() == {"name", "text", "_dates"}


def test_columns_are_searched_in_order_and_null_columns_skipped() -> None:
    texts = {"a": None, "b": "", "c": "x 42 y", "d": "42"}
    assert find_value("42", texts) == Found("exact", "c", 2, 4)
    assert find_value(42, texts, kind="int") == Found("exact", "c", 2, 4)


def test_offsets_are_python_string_indexes_past_emoji_and_combining_marks() -> None:
    # astral characters (one index each), an emoji with a skin tone and a variation selector,
    # a decomposed é (two indexes)
    text = "👍🏽 ❤️ Cafe\u0301 Noir 🎉 Acme"
    found = find_value("Acme", {"t": text})
    assert found == Found("exact", "t", text.index("Acme"), len(text))
    assert (found.start, found.end) == (19, 23)
    found = find_value("café noir", {"t": text})
    assert found.status == "normalized"
    assert source(found, {"t": text}) == "Cafe\u0301 Noir"
    assert (found.start, found.end) == (6, 16)
    assert check("🎉", text) == ("exact", "🎉")


# --------------------------------------------------------------------------------------------
# normalized


@pytest.mark.parametrize(
    ("value", "text", "matched"),
    [
        ("acme corp", "Invoice from ACME   CORP today", "ACME   CORP"),
        ("Acme Corp", "from acme\n\tcorp,", "acme\n\tcorp"),
        ("Acme, Inc.", "Invoice from ACME INC today", "ACME INC"),
        ("ACME INC", "from (Acme, Inc.) today", "Acme, Inc"),
        ("U.S.A.", "made in the usa", "usa"),
        ("John Smith", "Name: - John - Smith -", "John - Smith"),
        ("ACME 123", f"from {WIDE_ACME} today", WIDE_ACME),
        ("file office", "the ﬁle oﬃce", "ﬁle oﬃce"),
        ("Straße 5", "HAUPTSTRASSE 5", "STRASSE 5"),
        ("café", "CAFE\u0301!", "CAFE\u0301"),
        ("Cafe\u0301", "un café", "café"),
        ("x@Example.com", "mail X@EXAMPLE.COM now", "X@EXAMPLE.COM"),
    ],
)
def test_normalized_matches_cover_the_original_characters(
    value: str, text: str, matched: str
) -> None:
    assert check(value, text) == ("normalized", matched)


def test_normalized_applies_to_identifier_kinds() -> None:
    # pydantic lowercases an email's domain and adds a slash to a bare URL
    assert check("https://example.com/", "see https://Example.com.", "url") == (
        "normalized",
        "https://Example.com",
    )
    uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert check(uuid, f"id {uuid.upper()}", "uuid") == ("normalized", uuid.upper())


def test_fold() -> None:
    assert fold(f"  Hello,\n\tWORLD!  ﬁ {wide('AB')} ß ") == "hello world fi ab ss"
    assert fold("a - b") == "a b"
    assert fold("a-b") == "ab"
    assert fold("---") == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_shortcut_folds_as_the_general_path(text: str) -> None:
    assert fold(text) == _fold(text).text


def test_a_value_of_only_punctuation_is_found_verbatim_or_not_at_all() -> None:
    assert check("€", "price: 5 €") == ("exact", "€")
    assert check("—", "a - b") == ("none", "")


# --------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize(
    ("value", "kind", "text", "status", "matched"),
    [
        (42, "int", "there are 42 items", "exact", "42"),
        (42, "int", "weighs 42kg", "exact", "42"),
        (42, "int", "142, 4.2, 1 042, 420 and finally 42.", "exact", "42"),
        (42, "int", "order 0042", "normalized", "0042"),
        (1234.5, "float", "Total 1.234,50 € due", "normalized", "1.234,50"),
        (1234.5, "float", "Total 1,234.50 due", "normalized", "1,234.50"),
        (1234.5, "float", "Total $1234.50 due", "normalized", "1234.50"),
        (1234.5, "float", "Total 1234.5 due", "exact", "1234.5"),
        ("1234.50", "decimal", "Total CHF 1'234.50 due", "normalized", "1'234.50"),
        ("1234.50", "decimal", "Total 1\u2009234,50 EUR", "normalized", "1\u2009234,50"),
        ("1234.50", "decimal", "Total 1 234,50 EUR", "normalized", "1 234,50"),
        ("1234.50", "decimal", "Total: 1234.50", "exact", "1234.50"),
        (Decimal("1234.50"), "decimal", "Total: 1234.50", "exact", "1234.50"),
        (1234567, "int", "1.234.567 people", "normalized", "1.234.567"),
        (1500, "int", "about 1,500 rows", "normalized", "1,500"),
        (1.5, "float", "about 1,500 rows", "normalized", "1,500"),
        (0.5, "float", "half: ,5 of it", "normalized", "5"),
        (-42, "int", "INV-42, balance -42 €", "exact", "-42"),
        (-42, "int", "balance \u221242 €", "normalized", "\u221242"),
        (-42.5, "float", "balance -$42.50", "normalized", "-$42.50"),
        (2024, "int", "in 2024 420 items", "exact", "2024"),
        (420, "int", "in 2024 420 items", "exact", "420"),
        (1234, "int", f"total {wide('1234')} yen", "normalized", wide("1234")),
        ("7", "decimal", "qty 7.00", "normalized", "7.00"),
    ],
)
def test_numbers(
    value: str | int | float | Decimal, kind: str, text: str, status: str, matched: str
) -> None:
    assert check(value, text, kind) == (status, matched)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "142 and 4.2 and 1 042 and 420 and 42,5 and 1,042"),
        (42, "4 2"),
        (-42, "INV-42 and ISO-42"),  # a hyphen after a letter is not a sign
        (42, "balance -42"),  # a sign is part of the number
        (1234.5, "1,234,5 and 12.345"),
        (2024, "01.03.2024"),  # a date is not a number
    ],
)
def test_numbers_match_whole_tokens_only(value: int | float, text: str) -> None:
    assert check(value, text, "float" if isinstance(value, float) else "int") == ("none", "")


def test_a_number_after_many_false_hits_is_still_exact() -> None:
    text = "2011, 1011, 2021, 1991, 1.5, 21, 1, 12"
    expected = Found("exact", "t", text.index(" 1,") + 1, text.index(" 1,") + 2)
    assert find_value(1, {"t": text}, kind="int") == expected
    texts = Texts({"t": text})
    find_value(7, texts, kind="int")  # reads every number of the text
    assert find_value(1, texts, kind="int") == expected


def test_a_number_in_a_text_field_is_matched_as_text() -> None:
    # no whole-token rule, and folding drops the separators
    assert check("42", "1420") == ("exact", "42")
    assert check("1234.50", "1.234,50") == ("normalized", "1.234,50")


def test_non_finite_floats_are_never_found() -> None:
    assert check(math.nan, "nan NaN") == ("none", "")
    assert check(math.inf, "inf") == ("none", "")


# --------------------------------------------------------------------------------------------
# dates and times


@pytest.mark.parametrize(
    "written",
    [
        "2024-03-01",
        "2024/03/01",
        "01.03.2024",
        "1.3.2024",
        "01.03.24",
        "01/03/2024",
        "03/01/2024",
        "3-1-2024",
        "1 March 2024",
        "1st March 2024",
        "1 Mar. 2024",
        "01-MAR-2024",
        "March 1, 2024",
        "Mar 1 2024",
        "March 1st, 2024",
        "1. März 2024",
        "1 Maerz 2024",
        "1er mars 2024",
        "1 de marzo de 2024",
        "1 marzo 2024",
        "1 maart 2024",
    ],
)
def test_dates_in_common_formats(written: str) -> None:
    status = "exact" if written == "2024-03-01" else "normalized"
    assert check("2024-03-01", f"Issued on {written}, paid later.", "date") == (status, written)


def test_dates_as_written_are_exact_and_the_earliest_equal_date_wins() -> None:
    assert check("2024-03-01", "on 2024-03-01", "date") == ("exact", "2024-03-01")
    text = "due 2 March 2024, issued 01.03.2024 and 1 March 2024"
    assert check("2024-03-01", text, "date") == ("normalized", "01.03.2024")


@pytest.mark.parametrize(
    "text",
    [
        "on 01.03.2023",
        "on 03.01.2024",  # dots: day first only
        "on 2 March 2024",
        "on 1 May 2024",
        "on 1 March",
        "on 11.03.2024",
        "on 2024-03-011 and 12024-03-01",
    ],
)
def test_other_dates_do_not_match(text: str) -> None:
    assert check("2024-03-01", text, "date") == ("none", "")


@pytest.mark.parametrize(
    ("value", "kind", "text", "matched"),
    [
        ("2024-03-01T10:30:00", "datetime", "1 March 2024 at 10:30 am", "1 March 2024 at 10:30 am"),
        ("2024-03-01T22:30:00Z", "datetime_aware", "at 2024-03-01T22:30 UTC", "2024-03-01T22:30"),
        ("2024-03-01T22:30:00+01:00", "datetime", "01.03.2024, 22:30 Uhr", "01.03.2024, 22:30"),
        ("2024-03-01T09:05:07", "datetime_naive", "2024-03-01 09:05:07.5", "2024-03-01 09:05:07.5"),
        ("2024-03-01T00:00:00", "datetime", "dated 1 March 2024.", "1 March 2024"),
        ("10:30:00", "time", "meet at 10:30 sharp", "10:30"),
        ("22:30:00", "time", "at 10.30pm or 10:30 p.m.", "10:30 p.m."),
        ("09:00:00", "time", "opens 9am", "9am"),
        ("21:15:00", "time", "à 21h15", "21h15"),
    ],
)
def test_datetimes_and_times(value: str, kind: str, text: str, matched: str) -> None:
    assert check(value, text, kind) == ("normalized", matched)


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        # a datetime needs its time written with the date, unless it is midnight
        ("2024-03-01T10:30:00", "datetime", "on 1 March 2024. Later, at 10:30"),
        ("2024-03-01T10:30:00", "datetime", "on 2024-03-01 10:31"),
        ("2024-03-01T00:00:00", "datetime", "on 2024-03-01 10:00"),
        ("10:30:15", "time", "at 10:30"),
        ("10:30:00", "time", "room 10 30"),
    ],
)
def test_times_must_agree(value: str, kind: str, text: str) -> None:
    assert check(value, text, kind) == ("none", "")


def test_an_unparseable_date_is_matched_as_text() -> None:
    assert check("March 2024", "in march 2024", "date") == ("normalized", "march 2024")


# --------------------------------------------------------------------------------------------
# fuzzy


@pytest.mark.parametrize(
    ("value", "text", "matched"),
    [
        ("Acme Corporation", "Invoice from Acme Corporatlon Ltd", "Acme Corporatlon"),
        ("Acme Corporation", "Invoice from Acme Corporaton Ltd", "Acme Corporaton"),
        ("Acme Corporation", "Invoice from Acme Corporattion Ltd", "Acme Corporattion"),
        ("Acme Corporation", "Invoice from Xcme Corporation Ltd", "Xcme Corporation"),
        ("Acme Corporation", "INVOICE FROM ACME C0RPORATION LTD", "ACME C0RPORATION"),
        ("Widget, large, blue", "2 x widget large bleu", "widget large bleu"),
    ],
)
def test_fuzzy_finds_ocr_noise_with_the_span_of_the_noisy_text(
    value: str, text: str, matched: str
) -> None:
    assert check(value, text) == ("fuzzy", matched)


@pytest.mark.parametrize(
    ("value", "text", "kind"),
    [
        ("Johnson", "Mr Jonsson", "str"),  # short values must match after folding
        ("Invoice 2024-0043", "Invoice 2024-0042", "str"),  # never a changed digit
        ("billing@acme.example", "billing@acne.example", "email"),  # identifiers: no fuzzy
        ("192.168.100.10", "host 192.168.100.11", "ipv4"),
        ("Acme Corporation Berlin", "Acme Corporation Munich", "str"),
        ("The quick brown fox", "quick", "str"),  # longer than the text
    ],
)
def test_fuzzy_refuses(value: str, text: str, kind: str) -> None:
    assert check(value, text, kind) == ("none", "")


def test_fuzzy_picks_the_best_column() -> None:
    texts = {"a": "Acme Corpqratlon", "b": "Acme Corporatlon"}
    assert find_value("Acme Corporation", texts) == Found("fuzzy", "b", 0, 16)
    # a tie goes to the earlier column
    texts = {"a": "Acme Corporatlon", "b": "Acme Corporatlon"}
    assert find_value("Acme Corporation", texts) == Found("fuzzy", "a", 0, 16)


def test_the_cutoff_lets_one_changed_character_in_ten() -> None:
    assert FUZZY_CUTOFF == 90
    assert check("abcdefghij", "xx abcdefghiX yy") == ("fuzzy", "abcdefghiX")
    assert check("abcdefghi", "xx abcdefghX yy") == ("none", "")


# --------------------------------------------------------------------------------------------
# the contract


def test_nothing_found() -> None:
    found = find_value("Globex", {"body": "Invoice from Acme"})
    assert found == Found("none")
    assert found.as_dict() == {"status": "none", "column": None, "start": None, "end": None}
    assert find_value("Globex", {}) == Found("none")


def test_as_dict() -> None:
    assert Found("exact", "body", 3, 7).as_dict() == {
        "status": "exact",
        "column": "body",
        "start": 3,
        "end": 7,
    }


@pytest.mark.parametrize("blank", ["", " ", "\n\t "])
def test_blank_values_are_refused(blank: str) -> None:
    # the caller stores null for a blank value: it has no source to point at
    with pytest.raises(ValueError, match="blank"):
        find_value(blank, {"body": "  text  "})


def test_non_scalar_values_are_refused() -> None:
    with pytest.raises(TypeError):
        find_value(True, {"body": "1 True"})
    with pytest.raises(TypeError):
        find_value(["a"], {"body": "a"})  # type: ignore[arg-type]


def test_texts_are_reused_across_values() -> None:
    texts = Texts({"a": "Acme Corp, 1.234,50 €", "b": None})
    assert [c.name for c in texts] == ["a"]
    assert find_value("acme corp", texts) == Found("normalized", "a", 0, 9)
    assert find_value(1234.5, texts, kind="float") == Found("normalized", "a", 11, 19)


# --------------------------------------------------------------------------------------------
# a whole answer


class Item(BaseModel):
    description: str
    quantity: int
    unit_price: Decimal


class Invoice(BaseModel):
    vendor: str
    email: EmailStr | None
    issued: dt.date
    total: Decimal
    paid: bool
    status: Literal["open", "paid"]
    items: list[Item]
    tags: list[str]
    notes: str | None
    extra: dict[str, int]


INVOICE_TEXT = (
    "INVOICE\n"
    "From: ACME Corporation <billing@acme.example>\n"
    "Date: 1 March 2024\n"
    "2 x Widget, large   12,50 €\n"
    "1 x Gadget           7,00 €\n"
    "Total: 32,00 €\n"
)


def _invoice() -> Invoice:
    return Invoice(
        vendor="Acme Corporation",
        email="billing@acme.example",
        issued=dt.date(2024, 3, 1),
        total=Decimal("32.00"),
        paid=True,
        status="open",
        items=[
            Item(description="Widget, large", quantity=2, unit_price=Decimal("12.50")),
            Item(description="Gizmo", quantity=1, unit_price=Decimal("7.00")),
        ],
        tags=["urgent", " "],
        notes=None,
        extra={"a": 1},
    )


def test_ground_mirrors_the_answer() -> None:
    compiled = compile_schema(Invoice)
    wire = compiled.encode(_invoice())
    texts = {"subject": "Invoice 2024-03", "body": INVOICE_TEXT}
    grounding, missing = ground(model_shape(Invoice), wire, texts)
    t = INVOICE_TEXT

    def at(status: str, sub: str, start: int = 0) -> dict[str, object]:
        i = t.index(sub, start)
        return {"status": status, "column": "body", "start": i, "end": i + len(sub)}

    none = {"status": "none", "column": None, "start": None, "end": None}
    assert grounding == {
        "vendor": at("normalized", "ACME Corporation"),
        "email": at("exact", "billing@acme.example"),
        "issued": at("normalized", "1 March 2024"),
        "total": at("normalized", "32,00"),
        "paid": None,
        "status": None,
        "items": [
            {
                "description": at("exact", "Widget, large"),
                "quantity": at("exact", "2", t.index("\n2 x")),
                "unit_price": at("normalized", "12,50"),
            },
            {
                "description": none,
                "quantity": at("exact", "1", t.index("1 March")),
                "unit_price": at("normalized", "7,00"),
            },
        ],
        "tags": [none, None],
        "notes": None,
        "extra": None,
    }
    assert missing == 2
    assert ungrounded_paths(model_shape(Invoice), grounding) == ["items[1].description", "tags[0]"]
    assert ungrounded_paths(model_shape(Invoice), grounding, within=["items.description"]) == [
        "items[1].description"
    ]
    assert ungrounded_paths(model_shape(Invoice), grounding, within=["vendor", "items[0]"]) == []
    # a prepared Texts gives the same
    assert ground(model_shape(Invoice), wire, Texts(texts)) == (grounding, 2)


def test_ground_with_null_lists_and_models_and_no_texts() -> None:
    class Inner(BaseModel):
        name: str

    class Outer(BaseModel):
        inner: Inner | None
        names: list[str] | None
        count: int | None

    shape = model_shape(Outer)
    assert ground(shape, {"inner": None, "names": None, "count": None}, {"body": "x"}) == (
        {"inner": None, "names": None, "count": None},
        0,
    )
    wire = {"inner": {"name": "x"}, "names": ["x", "y"], "count": 0}
    grounding, missing = ground(shape, wire, {"body": None})
    none = {"status": "none", "column": None, "start": None, "end": None}
    assert grounding == {"inner": {"name": none}, "names": [none, none], "count": none}
    assert missing == 4
    with pytest.raises(TypeError):
        ground(shape, [], {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "spec", "expected"),
    [
        ("line_items[1].description", "line_items.description", True),
        ("line_items[1].description", "line_items", True),
        ("line_items[1].description", "line_items[1]", True),
        ("line_items[1].description", "line_items[1].description", True),
        ("line_items[1].description", "line_items[0]", False),
        ("line_items[1].description", "line_items.price", False),
        ("line_items[1].description", "line_item", False),
        ("line_items[1].description", "description", False),
        ("tags[3]", "tags", True),
        ("vendor", "vendor", True),
        ("vendor_name", "vendor", False),
        ("a[0].b[2].c", "a.b.c", True),
        ("a[0].b[2].c", "a.b", True),
    ],
)
def test_path_matches(path: str, spec: str, expected: bool) -> None:
    assert path_matches(path, spec) is expected


def test_groundable_paths() -> None:
    assert groundable_paths(model_shape(Invoice)) == [
        "vendor",
        "email",
        "issued",
        "total",
        "items.description",
        "items.quantity",
        "items.unit_price",
        "tags",
        "notes",
    ]


# --------------------------------------------------------------------------------------------
# properties


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=200), st.data())
def test_any_substring_is_found_exactly(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text) - 1))
    j = data.draw(st.integers(i + 1, len(text)))
    value = text[i:j]
    assume(value.strip())
    first = text.find(value)
    assert find_value(value, {"t": text}) == Found("exact", "t", first, first + len(value))


_WORD = st.text(alphabet="abcxyzABCXYZéÉßøÅ0123", min_size=1, max_size=8)
_SEPARATOR = st.sampled_from([" ", "  ", "\n", ", ", " - ", ".\n\n", "\t(", ") "])
_WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_WORD, _SEPARATOR), min_size=1, max_size=25), st.data())
def test_a_mangled_phrase_is_found_normalized(
    words: list[tuple[str, str]], data: st.DataObject
) -> None:
    text = "".join(w + sep for w, sep in words)
    starts = []
    pos = 0
    for w, sep in words:
        starts.append(pos)
        pos += len(w) + len(sep)
    k = data.draw(st.integers(0, len(words) - 1))
    n = data.draw(st.integers(k, len(words) - 1))
    original = (starts[k], starts[n] + len(words[n][0]))
    mangled = ""
    for idx in range(k, n + 1):
        word = "".join(c.swapcase() if data.draw(st.booleans()) else c for c in words[idx][0])
        mangled += word if idx == k else data.draw(_WHITESPACE) + word
    found = find_value(mangled, {"t": text})
    matched = source(found, {"t": text})
    if found.status == "exact":  # the mangling changed nothing, or made another occurrence
        assert matched == mangled
        return
    assert found.status == "normalized"
    assert fold(matched) == fold(mangled)
    assert found.start is not None and found.start <= original[0]
    folded, needle = fold(text), fold(mangled)
    if folded.find(needle, folded.find(needle) + 1) < 0:  # the only occurrence
        assert (found.start, found.end) == original


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    st.sampled_from([(",", "."), (".", ","), ("'", "."), ("\u202f", ","), ("", ".")]),
    st.sampled_from(["{} €", "€{}", "USD {}", "({})", "total: {}."]),
)
def test_a_number_written_any_common_way_is_found(
    number: Decimal, separators: tuple[str, str], template: str
) -> None:
    thousands, point = separators
    whole, _, cents = f"{abs(number):.2f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    written = thousands.join([whole, *groups]) + point + cents
    if number < 0:
        written = "-" + written
    text = "Invoice 7 of 9. " + template.format(written) + " Thanks"
    found = find_value(str(number), {"t": text}, kind="decimal")
    assert found.status in ("exact", "normalized")
    assert source(found, {"t": text}) == written


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2060, 12, 31)),
    st.sampled_from(
        ["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d %B %Y", "%B %d, %Y", "%b %d %Y"]
    ),
)
def test_a_date_written_any_common_way_is_found(day: dt.date, form: str) -> None:
    written = day.strftime(form)
    text = f"Ref 12/2000, page 3. Dated {written} in Berlin."
    found = find_value(day.isoformat(), {"t": text}, kind="date")
    assert found.status in ("exact", "normalized")
    assert source(found, {"t": text}) == written


# pieces of numbers, dates, times, words and awkward characters, drawn in any order
_PIECES = st.sampled_from(
    [
        *("2024", "24", "03", "1", "0", "12", ".", ",", "-", "/", ":", "'", " ", "  ", "\n"),
        *("T", "March", "März", "mars", "de", "at", "pm", "a.m.", "€", "$", "\u2212", "\u202f"),
        *("Acme", "acme", "Corp", "é", "e\u0301", "ﬁ", "ß", "👍🏽", "\u0301"),
    ]
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)
_KINDS = ["str", "email", "int", "float", "decimal", "date", "datetime", "time"]


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _TEXTS, max_size=3),
    st.one_of(
        _TEXTS.filter(str.strip),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["2024-03-01", "2024-03-01T10:30:00", "10:30:00", "1234.50"]),
    ),
    st.sampled_from(_KINDS),
)
def test_find_value_never_fails_and_points_inside_its_column(
    texts: dict[str, str], value: str | int | float, kind: str
) -> None:
    found = find_value(value, texts, kind=kind)
    if found.status == "none":
        assert (found.column, found.start, found.end) == (None, None, None)
        return
    assert found.column in texts
    assert found.start is not None and found.end is not None
    assert 0 <= found.start < found.end <= len(texts[found.column])
    if found.status == "exact" and isinstance(value, str):
        # a number is compared as written without surrounding spaces
        assert source(found, texts) in (value, value.strip())
