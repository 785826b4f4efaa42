"""Name and label syntax checks, with the messages kubectl users already know.

Each check returns a list of human-readable problems (empty when the value is
fine) rather than raising, because callers attach them to different places: a
field cause in an `Invalid` Status, or the text of a `BadRequest` for a selector.
The wording follows Kubernetes 1.32 (the kubectl this project is tested with),
including its quirks such as the double space in two-example hints.
"""

from __future__ import annotations

import re
from collections.abc import Callable

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
RFC1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_RFC1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_RFC1035_LABEL_RE = re.compile(_RFC1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_RFC1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)


def max_len_message(limit: int) -> str:
    """The length complaint shared by every name check."""
    return f"must be no more than {limit} characters"


def regex_message(message: str, pattern: str, *examples: str) -> str:
    """A syntax complaint with examples and the regex, shaped as kubectl prints it."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    # Upstream joins "'a', " and " or " — the doubled space is part of the known text.
    hint = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {hint}regex used for validation is '{pattern}')"


def _size(value: str) -> int:
    # Limits are in bytes of UTF-8, as Go's len() counts them.
    return len(value.encode("utf-8"))


def dns1123_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 label (namespaces, most short names)."""
    errs: list[str] = []
    if _size(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_message(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain that is not a valid label can only be failing on dots.
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_message(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc")
            )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 subdomain (the default object name rule)."""
    errs: list[str] = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_message(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_message(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def rfc1035_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1035 label (Service names must start with a letter)."""
    errs: list[str] = []
    if _size(value) > RFC1035_LABEL_MAX:
        errs.append(max_len_message(RFC1035_LABEL_MAX))
    if not _RFC1035_LABEL_RE.fullmatch(value):
        errs.append(regex_message(_RFC1035_LABEL_MSG, _RFC1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def qualified_name(value: str) -> list[str]:
    """Problems with `value` as a qualified name: label and annotation keys, finalizers."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_message(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _size(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_message(QUALIFIED_NAME_MAX))
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + regex_message(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value(value: str) -> list[str]:
    """Problems with `value` as a label value (may be empty; at most 63 characters)."""
    errs: list[str] = []
    if _size(value) > LABEL_VALUE_MAX:
        errs.append(max_len_message(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            regex_message(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def _mask_trailing_dash(prefix: str) -> str:
    # A generated suffix follows the prefix, so a trailing '-' is fine there. Upstream
    # swaps the last two characters for one alphanumeric; do the same so that the
    # accepted set (and the length check) agree with a real cluster.
    if len(prefix) > 1 and prefix.endswith("-"):
        return prefix[:-2] + "a"
    return prefix


def validate_generate_name(
    generate_name: str, name_validator: Callable[[str], list[str]] = dns1123_subdomain
) -> list[str]:
    """Problems with a `metadata.generateName` prefix under a kind's name rule.

    The prefix only has to be valid once a random suffix is appended, so a
    trailing dash is allowed; the name actually generated is checked again as
    `metadata.name`.
    """
    return list(name_validator(_mask_trailing_dash(generate_name)))

