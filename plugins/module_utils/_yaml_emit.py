# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block-style YAML in the exact layout of go-yaml v2 (what sigs.k8s.io/yaml prints).

Kubernetes tools written in Go marshal objects with go-yaml v2. Its output differs from PyYAML's:
mapping keys in go-yaml's "natural" order, sequences not indented under their key, strings quoted
only when a YAML 1.1 reader would take them for another type. This module reproduces that layout
for the value types a manifest uses: dict, list, str, bool, int, float and None.

Standard library only: it runs on managed nodes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import re

BEST_WIDTH = 80  # go-yaml v2 folds long plain scalars at spaces past this column
INDENT = 2

# Words go-yaml v2 resolves to bool or null (YAML 1.1), and the special floats.
_RESOLVED_WORDS = frozenset(
    "y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF "
    "~ null Null NULL .nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF <<".split()
)
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BASE60_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:([Tt]| )[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,9})?(?:Z|[-+][0-9]{2}:[0-9]{2})?)?$"
)
_FIRST_CHAR_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")


def _resolves_to_non_string(text):
    """True when go-yaml v2 would read ``text`` unquoted as something other than a string."""
    if text == "" or text in _RESOLVED_WORDS:
        return True
    first = text[0]
    if first == ".":
        return bool(_DOT_FLOAT.match(text))
    if first in "+-0123456789":
        plain = text.replace("_", "")
        if _TIMESTAMP.match(text) and first.isdigit():
            return True
        if _GO_INT.match(plain) or _YAML_FLOAT.match(plain):
            return True
        if plain.startswith("-0b") and len(plain) > 3 and set(plain[3:]) <= set("01"):
            return True
    return False


def _plain_allowed(text):
    """libyaml's scalar analysis for block context: can ``text`` be written without quotes."""
    if text.startswith(("---", "...")):
        return False
    if text[0] in " \t" or text[-1] in " \t":
        return False
    length = len(text)
    for index, char in enumerate(text):
        followed_by_space = index + 1 == length or text[index + 1] in " \t"
        if index == 0:
            if char in _FIRST_CHAR_INDICATORS:
                return False
            if char in "?:-" and followed_by_space:
                return False
        else:
            if char == ":" and followed_by_space:
                return False
            if char == "#" and text[index - 1] in " \t":
                return False
    return True


def _check_printable(text):
    for char in text:
        if char in "\n\r" or (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            raise ValueError(
                "The value %r contains a line break or control character; manifest values must be "
                "single-line printable text." % text
            )


def _fold(text, column, indent, allow_breaks):
    """Write ``text`` starting at ``column``, breaking at single spaces past BEST_WIDTH like libyaml."""
    out = []
    previous_space = False
    for index, char in enumerate(text):
        if char == " ":
            next_is_space = index + 1 < len(text) and text[index + 1] == " "
            if allow_breaks and not previous_space and column > BEST_WIDTH and not next_is_space:
                out.append("\n" + " " * indent)
                column = indent
            else:
                out.append(char)
                column += 1
            previous_space = True
        else:
            out.append(char)
            column += 1
            previous_space = False
    return "".join(out)


def _double_quoted(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    return '"%s"' % escaped


def scalar(value, column=0, indent=0, simple_key=False):
    """The text of one scalar as go-yaml v2 writes it at ``column`` (continuations at ``indent``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError("cannot emit %r as a YAML scalar" % (value,))
    _check_printable(value)
    if _resolves_to_non_string(value) or _BASE60_FLOAT.match(value):
        return _double_quoted(value)
    if _plain_allowed(value):
        return _fold(value, column, indent, not simple_key)
    # The first and last characters of a single-quoted scalar never break a line.
    quoted = "'" + value.replace("'", "''") + "'"
    return _fold(quoted, column, indent, not simple_key)


def _natural_less(left, right):
    """go-yaml v2's key order: letters by code point, non-letters first, digit runs by value."""
    for index in range(min(len(left), len(right))):
        lchar, rchar = left[index], right[index]
        if lchar == rchar:
            continue
        lletter, rletter = lchar.isalpha(), rchar.isalpha()
        if lletter and rletter:
            return lchar < rchar
        if lletter or rletter:
            return rletter
        lnum = rnum = 0
        if lchar == "0" or rchar == "0":
            back = index - 1
            while back >= 0 and left[back].isdigit():
                if left[back] != "0":
                    lnum = rnum = 1
                    break
                back -= 1
        lend = index
        while lend < len(left) and left[lend].isdigit():
            lnum = lnum * 10 + int(left[lend])
            lend += 1
        rend = index
        while rend < len(right) and right[rend].isdigit():
            rnum = rnum * 10 + int(right[rend])
            rend += 1
        if lnum != rnum:
            return lnum < rnum
        if lend != rend:
            return lend < rend
        return lchar < rchar
    return len(left) < len(right)


def _compare_keys(first, second):
    if _natural_less(first, second):
        return -1
    if _natural_less(second, first):  # swapped on purpose: is the second key the smaller one
        return 1
    return 0


def sorted_keys(mapping):
    """The keys of ``mapping`` in go-yaml v2's order."""
    return sorted(mapping, key=functools.cmp_to_key(_compare_keys))


def _is_collection(value):
    return isinstance(value, (dict, list)) and len(value) > 0


def _emit_mapping(mapping, indent, lines):
    for key in sorted_keys(mapping):
        if not isinstance(key, str):
            raise TypeError("mapping keys must be strings, got %r" % (key,))
        value = mapping[key]
        head = " " * indent + scalar(key, column=indent, indent=indent, simple_key=True) + ":"
        if isinstance(value, dict) and value:
            lines.append(head)
            _emit_mapping(value, indent + INDENT, lines)
        elif isinstance(value, list) and value:
            lines.append(head)
            _emit_sequence(value, indent, lines)  # go-yaml does not indent a sequence under its key
        else:
            lines.append(head + " " + _inline(value, len(head) + 1, indent + INDENT))


def _emit_sequence(sequence, indent, lines):
    for item in sequence:
        if _is_collection(item):
            nested = []
            if isinstance(item, dict):
                _emit_mapping(item, indent + INDENT, nested)
            else:
                _emit_sequence(item, indent + INDENT, nested)
            # The first line of a nested collection shares the "- " line.
            nested[0] = " " * indent + "- " + nested[0][indent + INDENT:]
            lines.extend(nested)
        else:
            lines.append(" " * indent + "- " + _inline(item, indent + 2, indent + INDENT))


def _inline(value, column, indent):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value, column, indent)


def dump(document):
    """``document`` (a dict) as go-yaml v2 block YAML, ending with a newline."""
    if not isinstance(document, dict):
        raise TypeError("a document must be a mapping")
    if not document:
        return "{}\n"
    lines = []
    _emit_mapping(document, 0, lines)
    return "\n".join(lines) + "\n"
