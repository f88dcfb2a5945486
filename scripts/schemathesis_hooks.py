"""schemathesis hooks of scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A client sends a fresh `Idempotency-Key` with each new request and the same one only to retry
it. The generator, which likes short values such as "0", sends one key with many requests: in
the stateful phase a create is then replayed with the first answer, whose object a later step
may have deleted, and reads as "created resource not found". There, every well-formed key is
made unique per request; a malformed one is left as generated, and the other phases (whose
checks a replay cannot mislead) send keys as generated.
"""

import itertools
import re

import schemathesis

# The header's documented form (`tenant_api::routes::params::IdempotencyKey`).
_WELL_FORMED = re.compile(r"[\x21-\x7E]([\t\x20-\x7E]*[\x21-\x7E])?")
_MAX_LEN = 255
_counter = itertools.count()


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or meta.phase.name != "stateful" or not case.headers:
        return
    headers = case.headers
    for name, value in headers.items():
        if name.lower() != "idempotency-key" or not isinstance(value, str):
            continue
        if len(value) > _MAX_LEN or not _WELL_FORMED.fullmatch(value):
            continue
        suffix = f"~{next(_counter)}"
        headers[name] = value[: _MAX_LEN - len(suffix)] + suffix
