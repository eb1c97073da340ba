"""The API's JSON parser measures nesting without recursing and without being fooled by brackets or escaped
quotes inside strings, and refuses what is too deep with a ParseError (a 400 problem), not a RecursionError."""

import io
import time

import pytest
from django.conf import settings
from rest_framework.exceptions import ParseError

from common.parsers import JSONParser, json_depth


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0),
    ("[]", 1),
    ('{"a": [1, {"b": []}]}', 4),
    ('["[[[[", "]]]]"]', 1),                      # brackets inside strings do not count
    ('{"a": "\\"[[[[", "b": [[]]}', 3),           # nor after an escaped quote
    ('{"a": "\\\\", "b": [[]]}', 3),              # an escaped backslash closes nothing early
    ('{"a": "\\\\\\"[", "b": [[]]}', 3),          # backslash, quote, bracket: all inside the string
    ("[" * 5000, 5000),                             # unclosed: as deep as the parser would go
    ("]]]" + "[" * 3, 0),                         # the parser stops at the first ]
])
def test_depth_ignores_strings_and_counts_every_level(text, depth):
    """The measured depth is the parser's, for valid, tricky and broken documents alike."""
    assert json_depth(text) == depth


def test_depth_of_a_megabyte_of_brackets_is_measured_quickly():
    """A 1 MB document of brackets (the largest body the app reads) is measured in well under a second."""
    text = "[" * 500_000 + "]" * 500_000
    started = time.perf_counter()
    assert json_depth(text) == 500_000
    assert time.perf_counter() - started < 1.0


def _parse(text, encoding="utf-8"):
    return JSONParser().parse(io.BytesIO(text.encode(encoding)), parser_context={"encoding": encoding})


def test_parser_accepts_the_limit_and_refuses_one_level_more():
    """JSON_MAX_DEPTH levels parse; one more is a ParseError, as is a document deep enough to overflow a parser
    that recursed, in UTF-8 or UTF-16."""
    limit = settings.JSON_MAX_DEPTH
    assert _parse("[" * limit + "]" * limit) == eval("[" * limit + "]" * limit)  # noqa: S307 (a literal)
    for text in ("[" * (limit + 1) + "]" * (limit + 1), "[" * 200_000 + "]" * 200_000):
        with pytest.raises(ParseError, match="nest deeper"):
            _parse(text)
    with pytest.raises(ParseError, match="nest deeper"):
        _parse("[" * 200_000, encoding="utf-16")


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": ' + "9" * 5000 + "}", "{", ""])
def test_parser_refuses_what_json_refuses_with_a_parse_error(text):
    """Out-of-range constants, integers longer than Python converts, truncated and empty documents: ParseError."""
    with pytest.raises(ParseError):
        _parse(text)


def test_parser_refuses_undecodable_bytes_and_non_text_charsets():
    """Bytes invalid in the declared charset, and bytes-to-bytes codecs (a decompression bomb), are a ParseError."""
    with pytest.raises(ParseError):
        JSONParser().parse(io.BytesIO(b'{"a": "\xff"}'), parser_context={"encoding": "utf-8"})
    with pytest.raises(ParseError):
        JSONParser().parse(io.BytesIO(b"x"), parser_context={"encoding": "bz2_codec"})
