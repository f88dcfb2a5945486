#!/usr/bin/env python3
"""Helpers for benches/books/run.sh (stdlib only; PostgreSQL through the `psql` client).

  onboard URL OPKEY N MNO OUT        N merchants with a price list each (through the API); OUT: JSON
  real URL OPKEY SIM MERCHANTS OUT   a few real CPM payments and partial refunds through the API
  check-real DB MERCHANTS REAL       the real payments' stored rows = what `rows_of` generates
  seed DB MERCHANTS DATE N SEED MNO  N succeeded payments of business date DATE (UTC cut-off), with
                                     partial refunds and adjustments, written as the engine would
  verify DB DATE                     every statement of DATE = an independent sum over payments,
                                     payment_fees and refunds; each CSV matches its digest and totals
  report RESULTS                     the markdown table of results.jsonl

The rows `seed` writes come from `rows_of`, the same function `check-real` compares the engine's own
rows of real payments with: fee snapshot, journals, entries (transfers), refunds and fee returns.
"""
import base64
import csv
import datetime as dt
import hashlib
import http.client
import io
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse

csv.field_size_limit(1 << 30)  # a statement of a busy merchant is one large CSV field
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODEPAY_FEE_BPS = 60  # the simulator's default rate (codepay-sim DEFAULT_FEE_BPS)
CURRENCY = "USD"
WALLETS = ("alipay", "wechat_pay")
PAY_METHOD = {"alipay": "Alipay", "wechat_pay": "WeChatPay"}


def ulid(ms, rng):
    """A ULID string: 48-bit time, 80 random bits, Crockford base32 (26 characters)."""
    v = (ms << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


# --- the posting rules (crates/ledger pricing + postings, crates/payments/src/posting.rs) ----------

def rates_of(index):
    """Merchant `index`'s price list: a wallet + currency rate and a currency-only rate."""
    return [
        {"wallet": "alipay", "currency": CURRENCY, "percent_bps": 150 + index % 200, "fixed": 30},
        {"wallet": None, "currency": CURRENCY, "percent_bps": 290, "fixed": index % 50},
    ]


def half_up(num, den):
    # ledger::pricing::round_half_up_div for num >= 0, den > 0
    return (2 * num + den) // (2 * den)


def fee_of(rates, wallet, amount):
    """(percent part, fixed part): the most specific rate (wallet+currency, currency, wallet, any)."""
    for w, c in ((wallet, CURRENCY), (None, CURRENCY), (wallet, None), (None, None)):
        for r in rates:
            if r["wallet"] == w and r["currency"] == c:
                fixed = r["fixed"] if r["currency"] == CURRENCY else 0
                return half_up(amount * r["percent_bps"], 10_000), fixed
    return 0, 0


def codepay_fee(amount):
    return (amount * CODEPAY_FEE_BPS + 5_000) // 10_000


def fee_return(percent_part, amount, refunded_before, refund):
    if percent_part == 0 or amount == 0:
        return 0
    return half_up(percent_part * (refunded_before + refund), amount) - half_up(percent_part * refunded_before, amount)


def rows_of(pay, rates):
    """What the engine stores when payment `pay` succeeds and its refunds succeed, without ids:
    the fee snapshot, and per journal (kind, subject_type, subject, debit, credit, amount, occurred_at)."""
    pp, fixed = fee_of(rates, pay["wallet"], pay["amount"])
    cf = codepay_fee(pay["amount"])
    fee = {"fee_minor": pp + fixed, "fee_percent_minor": pp, "fee_fixed_minor": fixed,
           "pricing_version": 1, "codepay_fee_minor": cf}
    t = pay["succeeded_at"]
    journals = [("capture", "payment", pay["id"], "gateway_clearing", "merchant_payable", pay["amount"], t)]
    if pp + fixed:
        journals.append(("fee", "payment", pay["id"], "merchant_payable", "platform_fee_revenue", pp + fixed, t))
    if cf:
        journals.append(("codepay_fee", "payment", pay["id"], "codepay_fee_expense", "gateway_clearing", cf, t))
    before, returns = 0, []
    for r in pay["refunds"]:
        back = fee_return(pp, pay["amount"], before, r["amount"])
        before += r["amount"]
        returns.append(back)
        journals.append(("refund", "refund", r["id"], "merchant_payable", "gateway_clearing", r["amount"], r["at"]))
        if back:
            journals.append(("fee_return", "refund", r["id"], "platform_fee_revenue", "merchant_payable", back, r["at"]))
    return fee, journals, returns


# --- psql --------------------------------------------------------------------------------------

def psql(db, sql, stdin=None):
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", db, "-c", sql],
                         input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"psql failed: {out.stderr.strip()[:2000]}")
    return [l.split("\t") for l in out.stdout.splitlines() if l]


def copy_csv(db, sql):
    """Rows of `COPY (sql) TO STDOUT CSV` (fields with line breaks kept whole)."""
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", db, "-c",
                          f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"], capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"psql failed: {out.stderr.decode()[:2000]}")
    return list(csv.reader(io.StringIO(out.stdout.decode(), newline="")))


# --- HTTP --------------------------------------------------------------------------------------

class Api:
    def __init__(self, url, key):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.key = u.hostname, u.port, key
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, key=None, ok=(200, 201)):
        headers = {"Authorization": f"Bearer {key or self.key}", "Content-Type": "application/json"}
        if method == "POST":
            headers["Idempotency-Key"] = f"bk-{time.time_ns()}-{random.getrandbits(32)}"
        data = None if body is None else json.dumps(body)
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        if resp.status not in ok:
            raise SystemExit(f"{method} {path}: HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else None


def onboard(url, op_key, n, merchant_no, out):
    """N merchants (4 threads), each with its price list; keeps id, index and rates."""
    n = int(n)
    merchants, lock = [None] * n, threading.Lock()

    def work(indices):
        api = Api(url, op_key)
        for i in indices:
            m = api.call("POST", "/v1/merchants", {
                "name": f"Books bench {i}", "default_currency": CURRENCY, "max_amount": 100_000_000,
                "codepay": {"merchant_no": merchant_no}})
            api.call("PUT", f"/v1/merchants/{m['id']}/pricing", {"rates": rates_of(i)})
            with lock:
                merchants[i] = {"index": i, "id": m["id"], "rates": rates_of(i)}

    threads = [threading.Thread(target=work, args=(range(k, n, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(m is None for m in merchants):
        raise SystemExit("onboard: some merchants were not created")
    with open(out, "w") as f:
        json.dump(merchants, f)


def real(url, op_key, sim, merchants_file, out):
    """Real payments through the API: CPM (approve auth codes minted at the simulator), both wallets,
    amounts that round both ways, with partial refunds (two on one payment), waited until final."""
    merchants = json.load(open(merchants_file))[:4]
    simu = urllib.parse.urlparse(sim)
    op = Api(url, op_key)
    amounts = [1000, 1137, 1550, 1517, 99, 12345, 250000, 333]
    pays = []
    for k, amount in enumerate(amounts):
        m = merchants[k % len(merchants)]
        wallet = WALLETS[k % 2]
        key = op.call("POST", f"/v1/merchants/{m['id']}/api-keys", {"label": "books-bench"})["secret"]
        simc = http.client.HTTPConnection(simu.hostname, simu.port, timeout=10)
        simc.request("POST", "/sim/auth-codes", body=json.dumps({"scenario": "approve", "pay_method_id": PAY_METHOD[wallet]}),
                     headers={"Content-Type": "application/json"})
        code = json.loads(simc.getresponse().read())["auth_code"]
        simc.close()
        api = Api(url, key)
        p = api.call("POST", "/v1/payments?wait=30", {
            "mode": "cpm", "amount": amount, "currency": CURRENCY, "merchant_order_id": f"real-{k}-{time.time_ns()}",
            "wallet": wallet, "auth_code": code})
        if p["status"] != "succeeded":
            raise SystemExit(f"real: payment {p['id']} is {p['status']}")
        refunds = []
        for share in ([0.4] if k % 3 == 0 else []) + ([0.25, 0.5] if k % 4 == 1 else []):
            r = api.call("POST", f"/v1/payments/{p['id']}/refunds", {"amount": max(1, int(amount * share)),
                                                               "merchant_refund_id": f"rr-{k}-{time.time_ns()}"})
            for _ in range(300):
                if r["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.1)
                r = api.call("GET", f"/v1/refunds/{r['id']}")
            if r["status"] != "succeeded":
                raise SystemExit(f"real: refund {r['id']} is {r['status']}")
            refunds.append(r["id"])
        pays.append({"id": p["id"], "merchant": m["id"], "index": m["index"], "wallet": wallet, "amount": amount,
                     "refunds": refunds})
    with open(out, "w") as f:
        json.dump(pays, f)
    print(f"real: {len(pays)} payments, {sum(len(p['refunds']) for p in pays)} refunds", file=sys.stderr)


def check_real(db, merchants_file, real_file):
    """Each real payment's stored fee snapshot, journals and entries, and its refunds' fee returns,
    equal `rows_of` (ids and timestamps taken from the stored rows)."""
    pays = json.load(open(real_file))
    merchants = json.load(open(merchants_file))
    checked = 0
    for p in pays:
        fee_row = psql(db, f"SELECT fee_minor, fee_percent_minor, fee_fixed_minor, pricing_version, "
                           f"coalesce(codepay_fee_minor, 0), created_at FROM payment_fees WHERE payment_id = '{p['id']}'")
        if len(fee_row) != 1:
            raise SystemExit(f"check-real: {p['id']} has no fee snapshot")
        # When payfac recorded each success: its journals' occurred_at. The fee snapshot and the
        # refund row are written in the same transaction (their timestamps a few ms apart).
        at = lambda subject, kind: int(psql(db, "SELECT occurred_at FROM ledger_journals "
                                                f"WHERE subject_id = '{subject}' AND kind = '{kind}'")[0][0])
        succeeded_at = at(p["id"], "capture")
        if abs(int(fee_row[0][5]) - succeeded_at) > 1_000:
            raise SystemExit(f"check-real: {p['id']} fee snapshot written {fee_row[0][5]}, captured {succeeded_at}")
        refunds = []
        for rid in p["refunds"]:
            amount, updated, back = psql(db, f"SELECT amount_minor, updated_at, fee_return_minor FROM refunds WHERE id = '{rid}'")[0]
            r_at = at(rid, "refund")
            if abs(int(updated) - r_at) > 1_000:
                raise SystemExit(f"check-real: refund {rid} updated {updated}, booked {r_at}")
            refunds.append({"id": rid, "amount": int(amount), "at": r_at, "stored_back": int(back)})
        rates = merchants[p["index"]]["rates"]
        fee, journals, returns = rows_of({"id": p["id"], "wallet": p["wallet"], "amount": p["amount"],
                                          "succeeded_at": succeeded_at, "refunds": refunds}, rates)
        got_fee = dict(zip(("fee_minor", "fee_percent_minor", "fee_fixed_minor", "pricing_version", "codepay_fee_minor"),
                           map(int, fee_row[0][:5])))
        if got_fee != fee:
            raise SystemExit(f"check-real: {p['id']} fee snapshot {got_fee} != rules {fee}")
        if [r["stored_back"] for r in refunds] != returns:
            raise SystemExit(f"check-real: {p['id']} fee returns {[r['stored_back'] for r in refunds]} != rules {returns}")
        subjects = "','".join([p["id"]] + p["refunds"])
        stored = psql(db, "SELECT j.kind, j.subject_type, j.subject_id, e.debit_account, e.credit_account, e.amount_minor, "
                          "e.occurred_at, j.occurred_at, j.merchant_id, e.merchant_id, j.currency, e.currency, e.created_at, "
                          "(SELECT count(*) FROM ledger_entries x WHERE x.journal_id = j.id), j.memo IS NULL "
                          f"FROM ledger_journals j JOIN ledger_entries e ON e.journal_id = j.id WHERE j.subject_id IN ('{subjects}')")
        got = []
        for s in stored:
            same = s[6] == s[7] and 0 <= int(s[12]) - int(s[6]) < 1_000 and s[8] == s[9] == p["merchant"] and s[10] == s[11] == CURRENCY
            if not same or s[13] != "1" or s[14] != "t":
                raise SystemExit(f"check-real: {p['id']} journal/entry shape differs from the seed's: {s}")
            got.append((s[0], s[1], s[2], s[3], s[4], int(s[5]), int(s[6])))
        # The refund journals' occurred_at is the refund's success commit (= its updated_at).
        if sorted(got) != sorted(journals):
            raise SystemExit(f"check-real: {p['id']} journals\n  stored {sorted(got)}\n  rules  {sorted(journals)}")
        checked += 1
    print(f"check-real: {checked} real payments stored exactly what the seed's rules generate", file=sys.stderr)


# --- the seed ----------------------------------------------------------------------------------

def day_window(date):
    d = dt.date.fromisoformat(date)
    start = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    return start, start + 86_400_000


def seed(db, merchants_file, date, n, seed_value, merchant_no):
    """N succeeded CPM payments of business date DATE (cut-off 00:00 UTC) over the merchants, skewed
    (merchant k gets about (sqrt((k+1)/M) - sqrt(k/M)) of them: the first ~3 %, the last ~0.05 %),
    5 % of them partially refunded later that day (every 10th of those twice), and two manual
    adjustments per 100 merchants; rows through COPY."""
    n, rng = int(n), random.Random(int(seed_value))
    merchants = json.load(open(merchants_file))
    nm = len(merchants)
    start, end = day_window(date)
    cols = {
        "payments": "id, merchant_id, merchant_order_id, mode, amount_minor, currency, wallet, status, "
                    "codepay_merchant_no, upstream_order_no, trans_no, qr_code, expires_at, paid_at, failure_code, "
                    "failure_message, amount_refunded_minor, description, metadata, closed_by_us, version, created_at, "
                    "updated_at, codepay_store_no, gateway_account_id, store_id, terminal_id, codepay_terminal_sn",
        "payment_fees": "payment_id, fee_minor, fee_percent_minor, fee_fixed_minor, pricing_version, codepay_fee_minor, created_at",
        "refunds": "id, payment_id, merchant_id, merchant_refund_id, amount_minor, currency, status, codepay_merchant_no, "
                   "upstream_order_no, trans_no, reason, failure_code, failure_message, version, created_at, updated_at, "
                   "store_id, terminal_id, gateway_account_id, codepay_store_no, codepay_terminal_sn, fee_return_minor",
        "ledger_journals": "id, kind, subject_type, subject_id, merchant_id, currency, occurred_at, memo, created_at",
        "ledger_entries": "id, journal_id, kind, subject_id, merchant_id, debit_account, credit_account, currency, "
                          "amount_minor, occurred_at, created_at",
    }
    bufs = {t: io.StringIO() for t in cols}
    w = {t: csv.writer(bufs[t], lineterminator="\n") for t in cols}
    gwa = psql(db, "SELECT coalesce((SELECT gateway_account_id FROM payments WHERE gateway_account_id IS NOT NULL LIMIT 1), '')")[0][0] or None
    day = date.replace("-", "")
    for j in range(n):
        m = merchants[min(nm - 1, int(nm * rng.random() ** 2))]
        amount = int(10 ** rng.uniform(2, 4.7))
        wallet = WALLETS[0] if rng.random() < 0.7 else WALLETS[1]
        created = start + rng.randrange(0, 86_400_000 - 3_600_000)
        t = created + rng.randrange(300, 60_000)
        pid = f"pay_{ulid(created, rng)}"
        refunds = []
        if rng.random() < 0.05:
            first = max(1, int(amount * rng.uniform(0.05, 0.6)))
            rt = t + rng.randrange(60_000, 3_000_000)
            refunds.append({"id": f"ref_{ulid(rt - 500, rng)}", "amount": first, "at": rt, "created": rt - 500})
            if j % 10 == 0 and amount - first > 1:
                second = max(1, (amount - first) // 2)
                rt2 = rt + 1_000
                refunds.append({"id": f"ref_{ulid(rt2 - 500, rng)}", "amount": second, "at": rt2, "created": rt2 - 500})
        pay = {"id": pid, "wallet": wallet, "amount": amount, "succeeded_at": t, "refunds": refunds}
        fee, journals, returns = rows_of(pay, m["rates"])
        refunded = sum(r["amount"] for r in refunds)
        updated = refunds[-1]["at"] if refunds else t
        # version: 0 at creation, 1 when it succeeded, +1 per succeeded refund (amount_refunded moves)
        w["payments"].writerow([pid, m["id"], f"bk{day}-{j}", "cpm", amount, CURRENCY, wallet, "succeeded", merchant_no,
                                f"P{ulid(created, rng)}", f"2{day}{j:012d}", None, None, t, None, None, refunded, None,
                                "{}", "f", 1 + len(refunds), created, updated, None, gwa, None, None, None])
        w["payment_fees"].writerow([pid, fee["fee_minor"], fee["fee_percent_minor"], fee["fee_fixed_minor"],
                                    fee["pricing_version"], fee["codepay_fee_minor"], t])
        for r, back in zip(refunds, returns):
            w["refunds"].writerow([r["id"], pid, m["id"], f"r{day}-{j}-{r['at']}", r["amount"], CURRENCY, "succeeded",
                                   merchant_no, f"R{ulid(r['created'], rng)}", f"3{day}{j:012d}", None, None, None, 1,
                                   r["created"], r["at"], None, None, gwa, None, None, back])
        for kind, stype, subject, debit, credit, amt, at in journals:
            jid = f"jrn_{ulid(at, rng)}"
            w["ledger_journals"].writerow([jid, kind, stype, subject, m["id"], CURRENCY, at, None, at])
            w["ledger_entries"].writerow([f"le_{ulid(at, rng)}", jid, kind, subject, m["id"], debit, credit, CURRENCY,
                                          amt, at, at])
    # Manual adjustments (ledger::postings::adjustment): a credit or a debit with a memo.
    for k in range(0, nm, 50):
        m = merchants[k]
        at = start + rng.randrange(3_600_000, 86_400_000 - 3_600_000)
        amount = rng.choice([-1, 1]) * rng.randrange(100, 5_000)
        debit, credit = ("platform_adjustments", "merchant_payable") if amount > 0 else ("merchant_payable", "platform_adjustments")
        jid, subject = f"jrn_{ulid(at, rng)}", f"adj_{ulid(at, rng)}"
        w["ledger_journals"].writerow([jid, "adjustment", "adjustment", subject, m["id"], CURRENCY, at, "bench correction", at])
        w["ledger_entries"].writerow([f"le_{ulid(at, rng)}", jid, "adjustment", subject, m["id"], debit, credit, CURRENCY,
                                      abs(amount), at, at])
    script = "BEGIN;\n"
    for table in cols:
        script += f"COPY {table} ({cols[table]}) FROM STDIN WITH (FORMAT csv);\n{bufs[table].getvalue()}\\.\n"
    script += "COMMIT;\n"
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", db], input=script, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"seed: psql failed: {out.stderr[:2000]}")


# --- the check after a close ---------------------------------------------------------------------

def verify(db, date):
    """Statement totals of DATE = sums over payments/payment_fees/refunds (not the ledger) of the
    succeeded payments and refunds committed in the day, adjustments from their journals; each
    statement's CSV hashes to its digest, has line_count lines and adds up to its totals."""
    start, end = day_window(date)
    expected = {}
    for m, cnt, gross, fees in psql(db, "SELECT p.merchant_id, count(*), sum(p.amount_minor), sum(f.fee_minor) "
                                        "FROM payment_fees f JOIN payments p ON p.id = f.payment_id "
                                        f"WHERE f.created_at >= {start} AND f.created_at < {end} GROUP BY 1"):
        expected[m] = dict(payments=int(cnt), gross=int(gross), fees=int(fees), refunds_n=0, refunds=0, returns=0, adj=0)
    zero = lambda: dict(payments=0, gross=0, fees=0, refunds_n=0, refunds=0, returns=0, adj=0)
    for m, cnt, amount, back in psql(db, "SELECT merchant_id, count(*), sum(amount_minor), sum(coalesce(fee_return_minor, 0)) "
                                         f"FROM refunds WHERE status = 'succeeded' AND updated_at >= {start} "
                                         f"AND updated_at < {end} GROUP BY 1"):
        e = expected.setdefault(m, zero())
        e.update(refunds_n=int(cnt), refunds=int(amount), returns=int(back))
    for m, adj in psql(db, "SELECT merchant_id, sum(CASE WHEN credit_account = 'merchant_payable' THEN amount_minor "
                           "ELSE -amount_minor END) FROM ledger_entries WHERE kind = 'adjustment' "
                           f"AND occurred_at >= {start} AND occurred_at < {end} GROUP BY 1"):
        expected.setdefault(m, zero())["adj"] = int(adj)
    got = {}
    for row in copy_csv(db, "SELECT merchant_id, payment_count, refund_count, gross_minor, fees_minor, refunds_minor, "
                            "fee_returns_minor, adjustments_minor, net_minor, line_count, lines_digest, lines_csv "
                            f"FROM settlements WHERE business_date = '{date}'"):
        m = row[0]
        pc, rc, gross, fees, refunds, returns, adj, net, lines = map(int, row[1:10])
        digest, body = row[10], row[11]
        s = got.setdefault(m, dict(payments=0, gross=0, fees=0, refunds_n=0, refunds=0, returns=0, adj=0))
        for k, v in (("payments", pc), ("gross", gross), ("fees", fees), ("refunds_n", rc), ("refunds", refunds),
                     ("returns", returns), ("adj", adj)):
            s[k] += v
        if net != gross - refunds - fees + returns + adj:
            raise SystemExit(f"verify: {m}: net {net} is not gross - refunds - fees + fee_returns + adjustments")
        want = "sha-256=:" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + ":"
        if digest != want:
            raise SystemExit(f"verify: {m}: lines_digest {digest} != sha-256 of lines_csv {want}")
        recs = list(csv.reader(io.StringIO(body, newline="")))
        if len(recs) != lines + 1 or not body.endswith("\r\n"):
            raise SystemExit(f"verify: {m}: {len(recs) - 1} CSV lines, line_count {lines}")
        col = {name: i for i, name in enumerate(recs[0])}
        if sum(int(r[col["net_minor"]]) for r in recs[1:]) != net:
            raise SystemExit(f"verify: {m}: CSV net_minor column does not add up to net")
    if got != expected:
        bad = [m for m in set(got) | set(expected) if got.get(m) != expected.get(m)]
        raise SystemExit(f"verify: {len(bad)} merchants differ, e.g. {bad[0]}: statements {got.get(bad[0])} "
                         f"vs sums {expected.get(bad[0])}")
    total = sum(e["payments"] for e in expected.values())
    print(f"verify: {len(got)} merchants' statements of {date} = independent sums ({total} payments); "
          "every CSV matches its digest and totals", file=sys.stderr)


def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print("| phase | seconds | req/s | p50 ms | p99 ms | errors | payfac CPU s | PostgreSQL CPU s | RSS MB | HWM MB | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        errs = ""
        if "statuses" in r:
            errs = sum(v for k, v in r["statuses"].items() if int(k) >= 300)
            errs += r.get("socket_errors", 0) + r.get("timeouts", 0) + r.get("unexpected_status_body", 0)
        f = lambda k, fmt="{:.2f}": fmt.format(r[k]) if k in r else ""
        print(f'| {r["phase"]} | {f("seconds", "{:.1f}")} | {f("rps", "{:.0f}")} | {f("p50_ms")} | {f("p99_ms")} | {errs} '
              f'| {f("payfac_cpu_s")} | {f("pg_cpu_s")} | {f("rss_mb", "{:.1f}")} | {f("hwm_mb", "{:.1f}")} | {r.get("note", "")} |')


def main():
    cmd, args = (sys.argv[1] if len(sys.argv) > 1 else ""), sys.argv[2:]
    table = {"onboard": onboard, "real": real, "check-real": check_real, "seed": seed, "verify": verify,
             "report": report}
    if cmd not in table:
        print(__doc__)
        sys.exit(2)
    table[cmd](*args)


if __name__ == "__main__":
    main()
