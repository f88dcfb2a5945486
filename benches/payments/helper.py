#!/usr/bin/env python3
"""Helpers for run.sh (stdlib + `cryptography`, no other dependency).

  mint URL N OUT               mint N single-use `approve` auth codes at the simulator (POST /sim/auth-codes)
  presign MODE N KEY APP MNO OUT [CODES]
                               N CodePay requests (mpm: cscanb.pay.getqrcode, cpm: bscanc.pay.submit with
                               codes from CODES), RSA2-signed with the app key KEY, one JSON body a line
  record ...                   turn one phase's raw measurements into a JSON line (see --help)
  report RESULTS               print the markdown tables from results.jsonl
"""
import argparse
import base64
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse


def mint(url, n, out):
    u = urllib.parse.urlparse(url)
    codes, lock = [], threading.Lock()
    workers = 4

    def work(count):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        mine = []
        for _ in range(count):
            conn.request("POST", "/sim/auth-codes", body='{"scenario":"approve","pay_method_id":"Alipay"}',
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise SystemExit(f"mint: HTTP {resp.status}: {body[:200]!r}")
            mine.append(json.loads(body)["auth_code"])
        with lock:
            codes.extend(mine)

    threads = [threading.Thread(target=work, args=(n // workers + (1 if i < n % workers else 0),))
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(codes) != n or len(set(codes)) != n:
        raise SystemExit(f"mint: wanted {n} distinct codes, got {len(set(codes))}")
    with open(out, "w") as f:
        f.write("\n".join(codes) + "\n")


def canonical(msg):
    # docs/codepay-api.md §5: drop sign and empty values, sort by key, key=value joined by '&'.
    return "&".join(f"{k}={v}" for k, v in sorted(msg.items()) if k != "sign" and v not in (None, ""))


def presign(mode, n, key_file, app_id, merchant_no, out, codes_file=None):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    with open(key_file, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    codes = open(codes_file).read().split() if codes_file else []
    if mode == "cpm" and len(codes) < n:
        raise SystemExit(f"presign: {n} cpm requests need {n} codes, have {len(codes)}")
    run = format(int(time.time()) % 100000, "05d")
    with open(out, "w") as f:
        for i in range(n):
            msg = {
                "app_id": app_id, "format": "JSON", "charset": "UTF-8", "version": "1.0",
                "sign_type": "RSA2", "timestamp": str(int(time.time() * 1000)),
                "method": "cscanb.pay.getqrcode" if mode == "mpm" else "bscanc.pay.submit",
                "merchant_no": merchant_no, "merchant_order_no": f"sim{mode}{run}x{i}",
                "pay_method_id": "Alipay", "price_currency": "USD", "order_amount": "12.50",
                "description": "bench", "notify_url": "http://127.0.0.1:9/notify",
            }
            if mode == "mpm":
                msg["expires"] = 900
            else:
                msg["auth_code"] = codes[i]
            sig = key.sign(canonical(msg).encode(), padding.PKCS1v15(), hashes.SHA256())
            msg["sign"] = base64.b64encode(sig).decode()
            f.write(json.dumps(msg, separators=(",", ":")) + "\n")


METRIC = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


def metric_sums(path):
    """{(name, labels): value} for the _sum/_count series payfac exports."""
    out = {}
    for line in open(path):
        m = METRIC.match(line.strip())
        if m and (m.group(1).endswith("_sum") or m.group(1).endswith("_count")):
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def buckets(path, name, label_has):
    """{le: cumulative count} of one histogram's _bucket series (labels containing label_has)."""
    out = {}
    for line in open(path):
        m = METRIC.match(line.strip())
        if m and m.group(1) == name + "_bucket" and label_has in m.group(2):
            le = re.search(r'le="([^"]+)"', m.group(2)).group(1)
            out[float("inf") if le == "+Inf" else float(le)] = float(m.group(3))
    return out


def quantile(before, after, q):
    """The q-quantile of the observations between two scrapes of a histogram, interpolated
    linearly inside its bucket (as Prometheus' histogram_quantile does); None without any."""
    les = sorted(after)
    counts = [after[le] - before.get(le, 0.0) for le in les]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in zip(les, counts):
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return prev_le


def delta(before, after, name, label_has):
    tot = 0.0
    for (n, labels), v in after.items():
        if n == name and label_has in labels:
            tot += v - before.get((n, labels), 0.0)
    return tot


def status_kb(path, field):
    for line in open(path):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def record(a):
    wrk = None
    for line in open(a.wrk):
        if line.startswith("RESULT "):
            wrk = json.loads(line[len("RESULT "):])
    if wrk is None:
        raise SystemExit(f"record: no RESULT line in {a.wrk}")
    rec = {"backend": a.backend, "phase": a.phase, "conc": a.conc, **wrk}
    n = max(wrk["requests"], 1)
    ms_per_tick = 1000.0 / a.clk
    if a.cpu_ticks is not None:
        rec["payfac_cpu_ms_per_req"] = round(a.cpu_ticks * ms_per_tick / n, 3)
    if a.sim_cpu_ticks is not None:
        rec["sim_cpu_ms_per_req"] = round(a.sim_cpu_ticks * ms_per_tick / n, 3)
    if a.db_xacts:
        rec["pg_xacts_per_req"] = round(a.db_xacts / n, 2)
    if a.status:
        rec["rss_mb"] = round(status_kb(a.status, "VmRSS") / 1024, 1)
        rec["hwm_mb"] = round(status_kb(a.status, "VmHWM") / 1024, 1)
    if a.metrics_before and a.metrics_after:
        b, f = metric_sums(a.metrics_before), metric_sums(a.metrics_after)
        http_n = delta(b, f, "payfac_http_request_duration_seconds_count", 'route="/v1/payments"')
        http_s = delta(b, f, "payfac_http_request_duration_seconds_sum", 'route="/v1/payments"')
        up_n = delta(b, f, "payfac_upstream_call_duration_seconds_count", "")
        up_s = delta(b, f, "payfac_upstream_call_duration_seconds_sum", "")
        if http_n:
            rec["server_mean_ms"] = round(1000 * http_s / http_n, 3)
            rec["upstream_calls_per_req"] = round(up_n / http_n, 3)
            rec["upstream_ms_per_req"] = round(1000 * up_s / http_n, 3)
        # payfac's own time (request time minus its waits on the database and CodePay),
        # measured in the process per request (payfac_http_own_seconds).
        own = 'method="POST",route="/v1/payments"'
        ob = buckets(a.metrics_before, "payfac_http_own_seconds", own)
        oa = buckets(a.metrics_after, "payfac_http_own_seconds", own)
        own_n = delta(b, f, "payfac_http_own_seconds_count", own)
        if own_n:
            rec["own_mean_ms"] = round(1000 * delta(b, f, "payfac_http_own_seconds_sum", own) / own_n, 3)
            for q, key in ((0.5, "own_p50_ms"), (0.99, "own_p99_ms")):
                v = quantile(ob, oa, q)
                if v is not None:
                    rec[key] = round(1000 * v, 3)
    if a.sign_ms:
        for key in ("payfac_cpu_ms_per_req", "sim_cpu_ms_per_req"):
            if key in rec:
                rec[key.replace("_ms_per_req", "_signatures_per_req")] = round(rec[key] / a.sign_ms, 2)
    print(json.dumps(rec))


def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print("| backend | phase | conc | req/s | p50 ms | p99 ms | errors | payfac CPU ms/req (signatures) "
          "| PG xacts/req | own p50 / p99 / mean ms | sim CPU ms/req "
          "| server mean ms | upstream ms/req (calls) | RSS MB | HWM MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        errs = sum(v for k, v in r.get("statuses", {}).items() if int(k) >= 300)
        errs += r.get("socket_errors", 0) + r.get("timeouts", 0) + r.get("unexpected_status_body", 0)
        up = (f'{r["upstream_ms_per_req"]} ({r["upstream_calls_per_req"]})'
              if "upstream_ms_per_req" in r else "")
        # sim rows replay a fixed number of requests and then idle: their req/s means nothing.
        rps = "n/a" if r["phase"].startswith("sim-") else f'{r["rps"]:.0f}'
        cpu = r.get("payfac_cpu_ms_per_req", "")
        if "payfac_cpu_signatures_per_req" in r:
            cpu = f'{cpu} ({r["payfac_cpu_signatures_per_req"]})'
        own = (f'{r.get("own_p50_ms", "")} / {r.get("own_p99_ms", "")} / {r["own_mean_ms"]}'
               if "own_mean_ms" in r else "")
        print(f'| {r["backend"]} | {r["phase"]} | {r["conc"]} | {rps} | {r["p50_ms"]:.2f} '
              f'| {r["p99_ms"]:.2f} | {errs} | {cpu} | {r.get("pg_xacts_per_req", "")} | {own} '
              f'| {r.get("sim_cpu_ms_per_req", "")} | {r.get("server_mean_ms", "")} | {up} '
              f'| {r.get("rss_mb", "")} | {r.get("hwm_mb", "")} |')


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "mint":
        mint(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "presign":
        presign(sys.argv[2], int(sys.argv[3]), *sys.argv[4:8], *(sys.argv[8:9]))
    elif cmd == "record":
        p = argparse.ArgumentParser(prog="helper.py record")
        for name in ("--backend", "--phase", "--wrk", "--status", "--metrics-before", "--metrics-after"):
            p.add_argument(name)
        for name in ("--conc", "--cpu-ticks", "--sim-cpu-ticks", "--clk", "--db-xacts"):
            p.add_argument(name, type=int)
        p.add_argument("--sign-ms", type=float)
        record(p.parse_args(sys.argv[2:]))
    elif cmd == "report":
        report(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
