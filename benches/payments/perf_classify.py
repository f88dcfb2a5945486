"""Where payfac's CPU goes, from a `perf record -g` of it: every sample classified by what its
stack is doing (signing, waiting on PostgreSQL, a thread hand-off, allocation, TCP, …); for the
kernel's scheduling samples, by the user-space call that blocked.

Usage: python3 perf_classify.py perf.data
"""
import collections
import subprocess
import sys

data = sys.argv[1]
out = subprocess.run(["perf","script","-i",data,"-F","ip,sym"],capture_output=True,text=True).stdout
samples=[]; cur=[]
for line in out.splitlines():
    if not line.strip():
        if cur: samples.append(cur); cur=[]
        continue
    cur.append(line.strip().split(" ",1)[-1])
if cur: samples.append(cur)
def classify(st):
    leaf=st[0]; joined=" ".join(st)
    if "aws_lc" in joined and ("rsa" in joined or "RSA" in joined or "DigestSign" in joined or "bn_" in joined or "rsaz" in joined): return "RSA sign/verify (aws-lc)"
    if any(k in leaf for k in ("finish_task_switch","__schedule","schedule")) or "irqentry_exit_to_user_mode" in leaf:
        if "PQgetResult" in joined or "pqWait" in joined or "diesel" in joined: return "sleep/wake: waiting on PostgreSQL"
        if "futex" in joined: return "sleep/wake: thread hand-off (futex)"
        if "epoll_wait" in joined: return "sleep/wake: runtime idle (epoll)"
        if "sched_yield" in joined: return "sleep/wake: sched_yield"
        return "sleep/wake: other (preemption, IPIs)"
    if any(k in joined for k in ("malloc","free","realloc","memmove","memset","memcpy")) and leaf.split("@")[0] in ("malloc","_int_malloc","cfree","_int_free","malloc_consolidate","realloc","_int_realloc","unlink_chunk.constprop.0","__memmove_avx512_unaligned_erms","__memset_avx512_unaligned_erms","__rustc::__rdl_alloc"): return "allocation and copying"
    if "tcp" in joined or "sock" in joined or "__send" in joined or "sendto" in joined or "recv" in joined or "skb" in joined: return "kernel TCP (loopback send/recv)"
    if "diesel" in joined or "libpq" in joined or "PQ" in joined: return "diesel/libpq (query building, protocol)"
    if "serde" in joined: return "JSON (serde)"
    if "actix" in joined or "hyper" in joined or "h1" in joined or "http" in joined: return "HTTP (actix, hyper/reqwest)"
    if "regex" in joined: return "route matching (regex)"
    if "tokio" in joined: return "tokio runtime"
    return "other"
c=collections.Counter(classify(s) for s in samples)
n=sum(c.values())
for k,v in c.most_common(): print(f"{100*v/n:5.1f}%  {k}")
print(f"({n} samples)")
