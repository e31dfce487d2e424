"""Page bodies compared across requests: a cursor is signed with the second it was made
(`pagination.encode_cursor`, Django's TimestampSigner), so two renderings of one page that
straddle a second differ in the cursor's stamp and signature. `unstamped` keeps the rest of the
body and the cursor's payload, which must not differ."""

from __future__ import annotations

import re

_STAMP = re.compile(r'("next_cursor": "[^":]+):[^"]+"')


def unstamped(body: str | bytes) -> str:
    text = body.decode() if isinstance(body, bytes) else body
    return _STAMP.sub(r'\1"', text)
