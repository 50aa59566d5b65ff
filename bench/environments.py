"""Execution-environment figures, measured in one run on this machine:

- resident memory: Portico at a fresh start, idle once the seed's function and HTTP API
  exist, and after the seed has answered; the seed's idle environment against a bare
  `node` process serving the same handler over HTTP (bench/baseline/hello-server.cjs,
  the runtime's own memory); per idle Node.js environment after the scale-outs;
- cold start: the first Invoke of a just-created function, against `node -e 0`
  (process start to exit of the same Node.js 22 binary, clean environment) and against
  the bare Node server above spawned and timed until its first answer (the cold-start goal's
  baseline: spawn -> first request), three ways:
  in a process started for it (the function sets NODE_OPTIONS, which only a process
  started with it can honour, so no spare serves it); invoked as soon as it is Active
  (the spare started when it was created may still be starting); and invoked 0.5 s later,
  a spare ready (the pre-initialised pool);
- spare runtime processes: how many, and their resident memory (the pool's cost);
- warm direct Invoke latency, p50 and p99, over one keep-alive connection;
- scale-out: 0 -> 50 and 0 -> 100 concurrent environments of one function, each
  invocation holding its environment (sleeping) 2 s, so every request needs its own
  environment; warm-first dispatch starts them all at once (no turnaround known yet).
  Four times: until every environment's process had started, had loaded the handler (its
  module's first line), was running its invocation, and until every answer was back
  (less the 2 s); the CPU the environments and Portico used, and the floor that makes at
  this machine's CPU count; then n `node -e 0` started at once, the machine's own floor.

Every control-plane call is SigV4-signed with the administrator key the data dir's first
start wrote (`<data-dir>/credentials`), so the Invoke figures include Portico's signature
check; the scale-out's requests are signed before the clock starts and sent at once.

Usage: bench/environments.py [--quick] PORTICO_BIN NODE22_BIN [-- SERVE_ARGS...]
(bench/environments.sh sets it up). --quick: a smoke run, a few of everything and a
0 -> 10 scale-out; every mode checks each answer and exits non-zero on a wrong one.
"""

import base64
import concurrent.futures
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
import threading
import time
import urllib.request
import zipfile

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from credentials import credentials  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCOUNT = "111122223333"
SEED_BODY = '{"message":"Hello, Dev!"}'
SLEEPER = b"""
const initAt = Date.now();
export const handler = async (event) => {
  const startAt = Date.now();
  if (event.ms) await new Promise((r) => setTimeout(r, event.ms));
  return { pid: process.pid, initAt, startAt };
};
"""


class Lambda:
    """SigV4-signed Lambda calls over one keep-alive connection (as an SDK would)."""

    def __init__(self, port, creds):
        self.port = port
        self.creds = creds
        self.conn = http.client.HTTPConnection("127.0.0.1", port)

    def sign(self, method, path, body=b""):
        url = f"http://127.0.0.1:{self.port}{path}"
        req = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self.creds, "lambda", "us-east-1").add_auth(req)
        return dict(req.headers.items())

    def send(self, conn, method, path, body, headers):
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data

    def call(self, method, path, body=b"", conn=None):
        return self.send(conn or self.conn, method, path, body, self.sign(method, path, body))

    def create(self, name, timeout=3, variables=None):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("index.mjs", SLEEPER)
        doc = {
            "FunctionName": name, "Runtime": "nodejs22.x", "Handler": "index.handler",
            "Role": f"arn:aws:iam::{ACCOUNT}:role/bench", "Timeout": timeout, "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()},
        }
        if variables:
            doc["Environment"] = {"Variables": variables}
        self.call("POST", "/2015-03-31/functions", json.dumps(doc).encode())
        while json.loads(self.call("GET", f"/2015-03-31/functions/{name}"))["Configuration"]["State"] != "Active":
            time.sleep(0.005)

    def invoke(self, name, payload=b"{}", conn=None):
        out = json.loads(self.call("POST", f"/2015-03-31/functions/{name}/invocations", payload, conn))
        if not isinstance(out, dict) or not isinstance(out.get("pid"), int):
            raise RuntimeError(f"unexpected answer from {name}: {out!r}")
        return out


def status_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages (the node binary's) split among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_spare(pid):
    """Whether a process of Portico's is a spare runtime not yet assigned a function: it
    works in `/` until its function's task root becomes its working directory."""
    try:
        return os.readlink(f"/proc/{pid}/cwd") == "/"
    except OSError:
        return False


def environments(root_pid):
    """Portico's runtime processes serving a function, and its spares."""
    procs = descendants(root_pid)
    return [p for p in procs if not is_spare(p)], [p for p in procs if is_spare(p)]


def descendants(root_pid):
    """The processes Portico started (its descendants)."""
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
    return sorted(family)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid, children=False):
    """CPU time (user + system) of a process, and of its reaped children with children."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return used * 1000 / TICK


def started_s(pid):
    """When a process started, in seconds since boot (CLOCK_BOOTTIME; 1/CLK_TCK steps)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19]) / TICK


def node_burst(node22, n):
    """Wall time of n `node -e 0` started at once: the machine's own floor for n starts."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([node22, "-e", "0"], env={"PATH": "/usr/bin:/bin"}) for _ in range(n)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("node -e 0 failed")
    return (time.perf_counter() - t0) * 1000


def spawn_to_first_answer(node22):
    """ms from spawning the bare Node server (bench/baseline/hello-server.cjs) to its
    first answer: the cold-start goal's baseline."""
    t0 = time.perf_counter()
    server = subprocess.Popen([node22, os.path.join(ROOT, "bench/baseline/hello-server.cjs"), "0"],
                              stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    try:
        port = int(server.stdout.readline().decode().rsplit(":", 1)[-1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/hello?name=Dev")
        body = conn.getresponse().read().decode()
        elapsed = (time.perf_counter() - t0) * 1000
        conn.close()
        if body != SEED_BODY:
            raise RuntimeError(f"the bare server answered {body}")
        return elapsed
    finally:
        server.kill()
        server.wait(5)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def mb(kb):
    return kb / 1024


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def answer_seed(url, n):
    """GETs `url` n times; each answer must be the seed's."""
    for _ in range(n):
        body = get(url)
        if body != SEED_BODY:
            raise RuntimeError(f"GET {url}: unexpected answer {body}")


def scale_out(lam, port, portico_pid, name, n, hold_ms):
    """n concurrent invokes of a new function, each holding its environment hold_ms."""
    lam.create(name, timeout=30)  # the hold plus a start on a busy machine
    path = f"/2015-03-31/functions/{name}/invocations"
    body = json.dumps({"ms": hold_ms}).encode()
    conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(n)]
    for c in conns:
        c.connect()
    signed = [lam.sign("POST", path, body) for _ in range(n)]
    go = threading.Barrier(n + 1)
    answers = [None] * n

    def one(i):
        go.wait()
        out = json.loads(lam.send(conns[i], "POST", path, body, signed[i]))
        if not isinstance(out, dict) or not isinstance(out.get("pid"), int):
            raise RuntimeError(f"scale-out of {name}: unexpected answer {out!r}")
        answers[i] = (out, time.perf_counter())

    portico_cpu = cpu_ms(portico_pid, children=True)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        go.wait()
        t0, t0_wall, t0_boot = time.perf_counter(), time.time(), time.clock_gettime(time.CLOCK_BOOTTIME)
        for f in futures:
            f.result()
    for c in conns:
        c.close()
    portico_cpu = cpu_ms(portico_pid, children=True) - portico_cpu
    pids = {a["pid"] for a, _ in answers}
    env_cpu = sum(cpu_ms(p) for p in pids)
    if len(pids) != n:
        raise RuntimeError(f"scale-out of {name}: {n} concurrent invocations ran in {len(pids)} environments")
    return {
        "n": n,
        "spawned_ms": (max(started_s(p) for p in pids) - t0_boot) * 1000,
        "init_ms": max(a["initAt"] for a, _ in answers) - t0_wall * 1000,
        "running_ms": max(a["startAt"] for a, _ in answers) - t0_wall * 1000,
        "answered_ms": (max(t for _, t in answers) - t0) * 1000 - hold_ms,
        "env_cpu_ms_avg": env_cpu / n,
        "portico_cpu_ms": portico_cpu,
    }


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    args = [a for a in args if a != "--quick"]
    serve_args = args[args.index("--") + 1:] if "--" in args else []
    portico_bin, node22 = args[0], args[1]
    data = tempfile.mkdtemp(prefix="portico-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PORTICO_NODEJS22_BIN"] = node22
    env["PORTICO_LOG"] = "warn"
    proc = subprocess.Popen(
        [portico_bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--account-id", ACCOUNT, *serve_args],
        stdout=subprocess.PIPE, env=env,
    )
    line = proc.stdout.readline().decode()
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    endpoint = f"http://127.0.0.1:{port}"
    # The administrator key written before the listening line.
    creds_file = os.path.join(data, "credentials")
    lam = Lambda(port, credentials(creds_file))
    baseline = None
    r = {}
    hold_ms = 1000 if quick else 2000
    widths = [10] if quick else [50, 100]
    try:
        time.sleep(0.5)
        r["portico_start_kb"] = status_kb(proc.pid)

        # The seed: its function and quick-created API, then its URL answered.
        api_id = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench/setup_seed.py"), endpoint, creds_file],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        time.sleep(0.5)
        r["portico_seed_kb"] = status_kb(proc.pid)
        seed_url = f"{endpoint}/execute-api/{api_id}/hello?name=Dev"
        requests = 20 if quick else 500
        answer_seed(seed_url, requests)
        time.sleep(0.5)
        r["portico_seed_answered_kb"] = status_kb(proc.pid)
        seed_envs, _ = environments(proc.pid)
        if len(seed_envs) != 1:
            raise RuntimeError(f"the seed runs in {len(seed_envs)} processes, expected 1: {seed_envs}")
        r["seed_env_rss_kb"] = status_kb(seed_envs[0])
        r["seed_env_pss_kb"] = pss_kb(seed_envs[0])

        # The runtime's own memory: the same handler in a bare node http server.
        baseline = subprocess.Popen([node22, os.path.join(ROOT, "bench/baseline/hello-server.cjs"), "0"],
                                    stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        bare_url = baseline.stdout.readline().decode().split()[-1] + "/hello?name=Dev"
        answer_seed(bare_url, requests)
        time.sleep(0.5)
        r["bare_node_rss_kb"] = status_kb(baseline.pid)
        r["bare_node_pss_kb"] = pss_kb(baseline.pid)
        baseline.terminate()
        baseline.wait(5)

        # Baseline: `node -e 0` in a clean environment, as runtimes are started.
        node_runs = []
        for _ in range(3 if quick else 20):
            t0 = time.perf_counter()
            subprocess.run([node22, "-e", "0"], env={"PATH": "/usr/bin:/bin"}, check=True)
            node_runs.append((time.perf_counter() - t0) * 1000)
        r["node_e_0_ms_p50"] = statistics.median(node_runs)
        r["node_first_answer_ms_p50"] = statistics.median(
            spawn_to_first_answer(node22) for _ in range(3 if quick else 20))

        # Cold starts: the first invoke of each new function, three ways (see the top).
        def cold_starts(kind, variables=None, pause=0.0):
            times = []
            for i in range(2 if quick else 10):
                name = f"cold-{kind}-{i}"
                lam.create(name, variables=variables)
                time.sleep(pause)
                t0 = time.perf_counter()
                lam.invoke(name)
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times), max(times)

        r["cold_fresh"] = cold_starts("fresh", variables={"NODE_OPTIONS": ""})
        r["cold_at_once"] = cold_starts("at-once")
        r["cold_spare"] = cold_starts("spare", pause=0.5)
        time.sleep(5.5)  # the spares reported after the last take are refilled
        _, spares = environments(proc.pid)
        r["spares"] = len(spares)
        r["spares_rss_kb"] = sum(status_kb(p) for p in spares)

        # Warm direct Invoke latency.
        lam.create("warm")
        for _ in range(20 if quick else 200):
            lam.invoke("warm")
        warm = []
        for _ in range(100 if quick else 3000):
            t0 = time.perf_counter()
            lam.invoke("warm")
            warm.append((time.perf_counter() - t0) * 1e6)
        r["warm_invoke_us_p50"] = pct(warm, 50)
        r["warm_invoke_us_p99"] = pct(warm, 99)

        # Scale-out, each width from zero (a new function), one after the other.
        r["scale"] = [scale_out(lam, port, proc.pid, f"wide-{n}", n, hold_ms) for n in widths]
        r["node_burst_ms"] = node_burst(node22, widths[-1])

        time.sleep(1)
        envs, _ = environments(proc.pid)
        r["idle_environments"] = len(envs)
        r["env_rss_kb_avg"] = sum(status_kb(p) for p in envs) / max(len(envs), 1)
        r["env_pss_kb_avg"] = sum(pss_kb(p) for p in envs) / max(len(envs), 1)
        r["portico_envs_kb"] = status_kb(proc.pid)
    finally:
        if baseline and baseline.poll() is None:
            baseline.kill()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, {cpu}")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet"], cwd=ROOT).returncode != 0
    print(f"portico: {rev or '?'}{'+dirty' if dirty else ''} ({portico_bin})")
    print(f"node: {subprocess.run([node22, '--version'], capture_output=True, text=True).stdout.strip()}"
          f"{'; --quick (smoke run: few samples)' if quick else ''}"
          f"{'; serve ' + ' '.join(serve_args) if serve_args else ''}")
    print("-- resident memory")
    print(f"Portico RSS, fresh start:                          {mb(r['portico_start_kb']):8.1f} MB")
    print(f"Portico RSS, idle, seed's function and API made:   {mb(r['portico_seed_kb']):8.1f} MB")
    print(f"Portico RSS, idle, seed answered {requests:>3} requests:     {mb(r['portico_seed_answered_kb']):8.1f} MB")
    print(f"seed's idle environment (Node 22 + runtime client), RSS: {mb(r['seed_env_rss_kb']):6.1f} MB"
          f"  (PSS {mb(r['seed_env_pss_kb']):.1f})")
    print(f"bare node http server, same handler, same requests, RSS: {mb(r['bare_node_rss_kb']):6.1f} MB"
          f"  (PSS {mb(r['bare_node_pss_kb']):.1f}; environment/bare: "
          f"{r['seed_env_rss_kb'] / r['bare_node_rss_kb']:.2f})")
    print(f"RSS per idle Node.js 22 environment, avg of {r['idle_environments']}:   {mb(r['env_rss_kb_avg']):8.1f} MB"
          f"  (PSS {mb(r['env_pss_kb_avg']):.1f})")
    print(f"Portico RSS with {r['idle_environments']} idle environments:              "
          f"{mb(r['portico_envs_kb']):8.1f} MB")
    print("-- latency")
    print(f"node -e 0 (Node 22, clean env), p50 of {len(node_runs)}:           {r['node_e_0_ms_p50']:8.1f} ms")
    print(f"bare node server, spawn -> first answer, p50:       {r['node_first_answer_ms_p50']:8.1f} ms"
          "  (the cold-start goal's baseline)")
    for key, what in (("cold_fresh", "in a process started for it"),
                      ("cold_at_once", "invoked once Active (spare starting)"),
                      ("cold_spare", "a spare ready (0.5 s after Active)")):
        p50, top = r[key]
        print(f"cold start, first Invoke, {what + ', p50:':<45} {p50:8.1f} ms"
              f"  (max {top:.1f}; ratio to node -e 0: {p50 / r['node_e_0_ms_p50']:.2f},"
              f" to the bare server's first answer: {p50 / r['node_first_answer_ms_p50']:.2f})")
    print(f"spare runtime processes kept ready afterwards: {r['spares']}, RSS {mb(r['spares_rss_kb']):.1f} MB in all")
    print(f"warm direct Invoke (signed, keep-alive), p50:      {r['warm_invoke_us_p50']:8.0f} us")
    print(f"warm direct Invoke, p99:                           {r['warm_invoke_us_p99']:8.0f} us")
    print(f"-- scale-out from zero: n concurrent Invokes of a new function, each holding its environment {hold_ms} ms;")
    print("   ms from sending them until every environment was spawned (its process started), had")
    print(f"   initialised (loaded the handler), was running its invocation, and answered (less the {hold_ms} ms)")
    print(f"{'':>20} {'spawned':>8} {'initialised':>12} {'running':>8} {'answered':>9}   CPU per env, Portico's, floor")
    for s in r["scale"]:
        floor = (s["env_cpu_ms_avg"] * s["n"] + s["portico_cpu_ms"]) / os.cpu_count()
        print(f"0 -> {s['n']:>3} environments {s['spawned_ms']:8.0f} {s['init_ms']:12.0f} {s['running_ms']:8.0f}"
              f" {s['answered_ms']:9.0f}   {s['env_cpu_ms_avg']:.0f} ms, {s['portico_cpu_ms']:.0f} ms in all,"
              f" {floor:.0f} ms at {os.cpu_count()} CPUs")
    print(f"{widths[-1]} x `node -e 0` started at once, until all exited: {r['node_burst_ms']:6.0f} ms"
          " (the machine's own floor for as many processes)")


if __name__ == "__main__":
    main()
