"""schemathesis hooks of scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A client sends a fresh `Idempotency-Key` with each new request and the same one only to retry
it. The generator, which likes short values such as "0", sends one key with many requests: in
the stateful phase a create is then replayed with the first answer, whose object a later step
may have deleted, and reads as "created resource not found". There, every well-formed key is
made unique per request; a malformed one is left as generated, and the other phases (whose
checks a replay cannot mislead) send keys as generated.

The payment and refund searches take ranges in two parameters each (`amount_gte` ≤
`amount_lte`, `created_gte` < `created_lt`; 400 otherwise, as their descriptions say), which no
JSON Schema of separate parameters can state. In every phase, a generated inverted range is put
the right way round (the amounts swapped, an empty time range left open above) so that a
schema-valid search stays a valid one; values that do not parse are left for the checks.
"""

import itertools
import re
from datetime import datetime

import schemathesis

# The header's documented form (`tenant_api::routes::params::IdempotencyKey`).
_WELL_FORMED = re.compile(r"[\x21-\x7E]([\t\x20-\x7E]*[\x21-\x7E])?")
_MAX_LEN = 255
_counter = itertools.count()


# The searches whose ranges span two parameters.
_SEARCHES = {("GET", "/v1/payments"), ("GET", "/v1/refunds")}


def _int(value):
    try:
        return int(str(value))
    except ValueError:
        return None


def _time(value):
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _orderly_ranges(query):
    lo, hi = _int(query.get("amount_gte")), _int(query.get("amount_lte"))
    if lo is not None and hi is not None and lo > hi:
        query["amount_gte"], query["amount_lte"] = query["amount_lte"], query["amount_gte"]
    lo, hi = _time(query.get("created_gte")), _time(query.get("created_lt"))
    if lo is not None and hi is not None and (lo.tzinfo is None) == (hi.tzinfo is None) and lo >= hi:
        del query["created_lt"]


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if (case.method.upper(), case.path) in _SEARCHES and isinstance(case.query, dict):
        _orderly_ranges(case.query)
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
