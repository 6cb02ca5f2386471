"""The `If-Match` header of a write, checked before the registry sees it (pure).

RFC 9110: `If-Match` is `*` or a comma-separated list of entity-tags, each quoted
(`"<hex>"`, optionally `W/"..."`). The registry compares tags; this module only
decides what a header *is*, so that nothing sent is mistaken for "no precondition":

- absent: no precondition (the write goes through);
- present but empty (or only commas and blanks): 412, since a precondition was asked
  for and names no version, so it cannot hold;
- malformed (an unquoted tag, an unclosed quote, `*` in a list, junk between tags):
  400, naming the header and the form it takes.
"""

from __future__ import annotations

import re

from dagfleet.control import ControlError

# One entity-tag: optional W/, then a quoted run of etagc (RFC 9110 section 8.8.3).
_ETAG = re.compile(r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"')
HOW = (
    "send the ETag exactly as GET or HEAD /api/v1/repos/{name} returned it, quotes "
    'included (If-Match: "3fa9..."), or * for any version, or leave the header out'
)


def check_if_match(value: str | None) -> str | None:
    """The header as the registry takes it; raises ControlError 412 (empty) or 400."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    tags = [item for item in items if item]
    if not tags:
        raise ControlError(f"If-Match is empty: it names no version to match; {HOW}", 412)
    if "*" in tags and len(tags) > 1:
        raise ControlError(f"If-Match {value!r} mixes '*' with tags: {HOW}", 400)
    for tag in tags:
        if tag != "*" and not _ETAG.fullmatch(tag):
            raise ControlError(
                f"If-Match {value!r} is malformed: {tag!r} is not a quoted entity-tag; {HOW}",
                400,
            )
    return value
