"""The API's JSON parser: DRF's, with a nesting limit checked before parsing.

The C JSON parser recurses once per array or object level. With the interpreter's default recursion limit it
raises RecursionError at about 1,000 levels (a 500, not a 400); with a limit raised by a library it runs off the C
stack and the process dies. No document of ours nests more than a few levels, so anything deeper than
JSON_MAX_DEPTH is refused with a 400 before the parser sees it."""

import re
from itertools import accumulate

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(text):
    """How deeply arrays and objects nest in the JSON document `text`, in linear time and without recursion.

    Strings are removed first (escaped backslashes, then escaped quotes, then everything between quotes), so
    brackets inside strings do not count; what is left is the brackets, whose running sum is the depth. For an
    invalid document the answer is at least the depth the parser would reach before it stops at the error."""
    text = text.replace("\\\\", "").replace('\\"', "")
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_STEP.__getitem__, map(ord, brackets)))))


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser (strict: no NaN or Infinity), refusing documents nested deeper than JSON_MAX_DEPTH and
    bodies that are not valid in their declared charset, each with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})  # text codecs only (no bz2_codec bombs)
        try:
            text = stream.read().decode(encoding)
        except UnicodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from exc
        limit = settings.JSON_MAX_DEPTH
        # Counting brackets is cheap; only a document with more of them than the limit needs the full measure.
        if text.count("[") + text.count("{") > limit and json_depth(text) > limit:
            raise ParseError(f"JSON parse error - arrays and objects nest deeper than {limit} levels.")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError as exc:  # not reachable past the depth check; kept so it can never be a 500
            raise ParseError("JSON parse error - nested too deeply.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
