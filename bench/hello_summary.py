"""Summarises bench/hello.sh's rounds: per target and connection count the median of its
windows, and Portico's ratios to the baselines, each taken within one round (windows
seconds apart) and then the median and range over the rounds.

Usage: hello_summary.py ROWS_TSV   (round, target, conns, req/s, p50, p99 per line)
"""
import collections
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def ms(text: str) -> float:
    """wrk's latency ('512.00us', '1.19ms', '1.02s') in milliseconds."""
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit]
    raise ValueError(f"not a wrk latency: {text!r}")


def latency(value_ms: float) -> str:
    return f"{value_ms * 1000:.0f}us" if value_ms < 1 else f"{value_ms:.2f}ms"


rows = collections.defaultdict(dict)  # (conns, round) -> target -> (rps, p50, p99)
with open(sys.argv[1]) as f:
    for line in f:
        rnd, target, conns, rps, p50, p99 = line.rstrip("\n").split("\t")
        rows[(int(conns), int(rnd))][target] = (float(rps), ms(p50), ms(p99))

print("summary: median over rounds (range)")
for conns in sorted({c for c, _ in rows}, reverse=True):
    rounds = [rows[k] for k in sorted(k for k in rows if k[0] == conns)]
    for target in ("portico", "bare-node", "serverless-offline"):
        rps = [r[target][0] for r in rounds]
        p50 = statistics.median(r[target][1] for r in rounds)
        p99 = statistics.median(r[target][2] for r in rounds)
        print(f"{target:<18} {conns:>5} {statistics.median(rps):>12.2f} {latency(p50):>10} {latency(p99):>10}"
              f"   ({min(rps):.0f}-{max(rps):.0f} req/s)")
    bare = [r["portico"][0] / r["bare-node"][0] for r in rounds]
    offline = [r["portico"][0] / r["serverless-offline"][0] for r in rounds]
    print(f"ratio portico/bare-node at {conns} conns: {statistics.median(bare):.2f} "
          f"({min(bare):.2f}-{max(bare):.2f}); portico/serverless-offline: {statistics.median(offline):.2f} "
          f"({min(offline):.2f}-{max(offline):.2f})")
    if conns == 1:
        d50 = [(r["portico"][1] - r["bare-node"][1]) * 1000 for r in rounds]
        d99 = [(r["portico"][2] - r["bare-node"][2]) * 1000 for r in rounds]
        print(f"added latency at 1 conn: p50 +{statistics.median(d50):.0f}us ({min(d50):+.0f} to {max(d50):+.0f}), "
              f"p99 +{statistics.median(d99):.0f}us ({min(d99):+.0f} to {max(d99):+.0f})")
