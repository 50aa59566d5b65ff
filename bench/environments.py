"""Execution-environment figures, measured in one run on this machine:

- cold start: the first Invoke of a just-created function, against `node -e 0`
  (process start to exit of the same Node.js 22 binary, clean environment);
- warm direct Invoke latency, p50 and p99, over one keep-alive connection;
- scale-out: 0 -> 50 concurrent environments of one function;
- resident memory: Portico idle, and per idle Node.js environment.

Every call is SigV4-signed with the administrator key the data dir's first start wrote
(`<data-dir>/credentials`), so the Invoke figures include Portico's signature check.

Usage: bench/environments.py PORTICO_BIN NODE22_BIN   (bench/environments.sh sets it up)
"""

import concurrent.futures
import configparser
import http.client
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

ACCOUNT = "111122223333"
SLEEPER = b"""
export const handler = async (event) => {
  if (event.ms) await new Promise((r) => setTimeout(r, event.ms));
  return { pid: process.pid };
};
"""


class Lambda:
    """SigV4-signed Lambda calls over one keep-alive connection (as an SDK would)."""

    def __init__(self, port, creds):
        self.port = port
        self.creds = creds
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def call(self, method, path, body=b"", conn=None):
        url = f"http://127.0.0.1:{self.port}{path}"
        req = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self.creds, "lambda", "us-east-1").add_auth(req)
        c = conn or self.conn
        c.request(method, path, body=body, headers=dict(req.headers.items()))
        r = c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data

    def create(self, name):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("index.mjs", SLEEPER)
        import base64

        doc = {
            "FunctionName": name, "Runtime": "nodejs22.x", "Handler": "index.handler",
            "Role": f"arn:aws:iam::{ACCOUNT}:role/bench", "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()},
        }
        self.call("POST", "/2015-03-31/functions", json.dumps(doc).encode())
        while json.loads(self.call("GET", f"/2015-03-31/functions/{name}"))["Configuration"]["State"] != "Active":
            time.sleep(0.005)

    def invoke(self, name, payload=b"{}", conn=None):
        return self.call("POST", f"/2015-03-31/functions/{name}/invocations", payload, conn)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children_rss_kb(root_pid):
    """RSS of the processes Portico started (its descendants)."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grew = {root_pid}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    family.discard(root_pid)
    return sum(rss_kb(p) for p in family), len(family)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    portico_bin, node22 = sys.argv[1], sys.argv[2]
    data = tempfile.mkdtemp(prefix="portico-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PORTICO_NODEJS22_BIN"] = node22
    env["PORTICO_LOG"] = "warn"
    proc = subprocess.Popen(
        [portico_bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--account-id", ACCOUNT],
        stdout=subprocess.PIPE, env=env,
    )
    line = proc.stdout.readline().decode()
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    # The administrator key written before the listening line.
    profile = configparser.ConfigParser()
    profile.read(os.path.join(data, "credentials"))
    lam = Lambda(port, Credentials(profile["default"]["aws_access_key_id"],
                                   profile["default"]["aws_secret_access_key"]))
    results = {}
    try:
        time.sleep(0.5)
        results["portico_idle_rss_mb"] = rss_kb(proc.pid) / 1024

        # Baseline: `node -e 0` in a clean environment, as runtimes are started.
        node_runs = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run([node22, "-e", "0"], env={"PATH": "/usr/bin:/bin"}, check=True)
            node_runs.append((time.perf_counter() - t0) * 1000)
        results["node_e_0_ms_p50"] = statistics.median(node_runs)

        # Cold starts: the first invoke of each new function.
        cold = []
        for i in range(10):
            name = f"cold-{i}"
            lam.create(name)
            t0 = time.perf_counter()
            lam.invoke(name)
            cold.append((time.perf_counter() - t0) * 1000)
        results["cold_start_ms_p50"] = statistics.median(cold)
        results["cold_start_ms_max"] = max(cold)

        # Warm direct Invoke latency.
        lam.create("warm")
        for _ in range(200):
            lam.invoke("warm")
        warm = []
        for _ in range(3000):
            t0 = time.perf_counter()
            lam.invoke("warm")
            warm.append((time.perf_counter() - t0) * 1e6)
        results["warm_invoke_us_p50"] = pct(warm, 50)
        results["warm_invoke_us_p99"] = pct(warm, 99)

        # Scale-out: 50 concurrent invokes, each holding its environment 200 ms.
        lam.create("wide")
        conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(50)]
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            pids = set(
                json.loads(p)["pid"]
                for p in pool.map(lambda c: lam.invoke("wide", b'{"ms":200}', c), conns)
            )
        results["scale_0_to_50_ms"] = (time.perf_counter() - t0) * 1000 - 200
        results["scale_environments"] = len(pids)

        time.sleep(0.5)
        total, count = children_rss_kb(proc.pid)
        results["idle_environments"] = count
        results["node_env_rss_mb_avg"] = total / max(count, 1) / 1024
        results["portico_rss_mb_after"] = rss_kb(proc.pid) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)

    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, {platform.processor() or platform.machine()}")
    print(f"node -e 0 (Node 22, clean env), p50 of 20:       {results['node_e_0_ms_p50']:8.1f} ms")
    print(f"cold start, first Invoke of a new function, p50:  {results['cold_start_ms_p50']:8.1f} ms"
          f"  (max {results['cold_start_ms_max']:.1f}; ratio to node -e 0: "
          f"{results['cold_start_ms_p50'] / results['node_e_0_ms_p50']:.2f})")
    print(f"warm direct Invoke (signed, keep-alive), p50:     {results['warm_invoke_us_p50']:8.0f} us")
    print(f"warm direct Invoke, p99:                          {results['warm_invoke_us_p99']:8.0f} us")
    print(f"scale 0 -> {results['scale_environments']} environments (less the 200 ms of work): "
          f"{results['scale_0_to_50_ms']:8.0f} ms")
    print(f"Portico RSS idle at start:                        {results['portico_idle_rss_mb']:8.1f} MB")
    print(f"Portico RSS with {results['idle_environments']} idle environments:          "
          f"{results['portico_rss_mb_after']:8.1f} MB")
    print(f"RSS per idle Node.js 22 environment (avg):        {results['node_env_rss_mb_avg']:8.1f} MB")


if __name__ == "__main__":
    main()
