"""Control-plane figures for bench/control.sh, against a running Portico.

  control.py create  ENDPOINT CREDENTIALS N DATA_DIR
      CreateFunction of a 1 MB zip (index.mjs plus 1 MiB of random, incompressible
      bytes; a new package each time, so nothing is deduplicated), then GetFunction
      until its State is Active; N times, one keep-alive connection, as an SDK would.
      Prints p50/p99 of "request sent -> 201" and "request sent -> Active", and the
      disk's floor for comparison: writing the same zip to DATA_DIR with one fsync.

  control.py presign ENDPOINT CREDENTIALS NAME LUA CURL_HEADERS
      Creates function NAME (a tiny zip), waits until Active, then signs ONE
      GetFunction of it with botocore's SigV4Auth (service lambda, us-east-1; the
      X-Amz-Date and Authorization botocore adds) and writes it as a wrk Lua script
      (LUA) and as curl `-H @file` lines (CURL_HEADERS), to be replayed as they are.

Every call is signed with the key in CREDENTIALS (the server's <data-dir>/credentials).
"""

import base64
import http.client
import io
import json
import os
import statistics
import sys
import time
import urllib.parse
import zipfile

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from credentials import credentials  # noqa: E402

REGION = "us-east-1"
HANDLER = b"export const handler = async () => ({ ok: true });\n"


def signed(creds, method, url, body=b""):
    """The headers botocore's SigV4Auth sends for this request."""
    headers = {"Content-Type": "application/json"} if body else {}
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(creds, "lambda", REGION).add_auth(req)
    return dict(req.headers.items())


class Client:
    def __init__(self, endpoint, creds):
        self.endpoint = endpoint.rstrip("/")
        u = urllib.parse.urlsplit(self.endpoint)
        self.conn = http.client.HTTPConnection(u.hostname, u.port)
        self.creds = creds

    def send(self, method, path, body=b"", headers=None):
        headers = headers or signed(self.creds, method, self.endpoint + path, body)
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def call(self, method, path, body=b""):
        status, data = self.send(method, path, body)
        if status >= 300:
            raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def account(self):
        # STS GetCallerIdentity over the query protocol, signed for sts.
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        req = AWSRequest(method="POST", url=self.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(self.creds, "sts", REGION).add_auth(req)
        self.conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
        r = self.conn.getresponse()
        data = r.read().decode()
        return data.split("<Account>")[1].split("</Account>")[0]


def package(random_bytes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("index.mjs", HANDLER)
        if random_bytes:
            z.writestr(zipfile.ZipInfo("blob.bin"), os.urandom(random_bytes), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def create_doc(name, account, zip_bytes):
    return json.dumps({
        "FunctionName": name, "Runtime": "nodejs22.x", "Handler": "index.handler",
        "Role": f"arn:aws:iam::{account}:role/bench", "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()},
    }).encode()


def wait_active(client, name):
    """Polls GetFunction (one signature, replayed) until Active; returns the time it saw it."""
    path = f"/2015-03-31/functions/{name}"
    headers = signed(client.creds, "GET", client.endpoint + path)
    while True:
        status, data = client.send("GET", path, headers=headers)
        if status != 200:
            raise SystemExit(f"GetFunction {name}: {status} {data[:300]!r}")
        state = json.loads(data)["Configuration"]["State"]
        if state == "Active":
            return time.perf_counter()
        if state != "Pending":
            raise SystemExit(f"{name} became {state}: {data[:300]!r}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def create(endpoint, creds_file, n, data_dir):
    client = Client(endpoint, credentials(creds_file))
    account = client.account()
    run = os.urandom(3).hex()
    to_created, to_active = [], []
    size = 0
    for i in range(n):
        name = f"bench-create-{run}-{i}"
        zip_bytes = package(1024 * 1024)
        size = len(zip_bytes)
        body = create_doc(name, account, zip_bytes)
        path = "/2015-03-31/functions"
        headers = signed(client.creds, "POST", client.endpoint + path, body)  # signing is the client's, not timed
        t0 = time.perf_counter()
        status, data = client.send("POST", path, body, headers)
        t1 = time.perf_counter()
        if status != 201:
            raise SystemExit(f"CreateFunction: {status} {data[:300]!r}")
        t2 = t1 if json.loads(data)["State"] == "Active" else wait_active(client, name)
        to_created.append((t1 - t0) * 1000)
        to_active.append((t2 - t0) * 1000)
    # The disk's floor: the same bytes written and fsynced once, on the data dir's file system.
    floor = []
    for _ in range(n):
        zip_bytes = package(1024 * 1024)
        p = os.path.join(data_dir, "fsync-floor.tmp")
        t0 = time.perf_counter()
        with open(p, "wb") as f:
            f.write(zip_bytes)
            f.flush()
            os.fsync(f.fileno())
        floor.append((time.perf_counter() - t0) * 1000)
        os.unlink(p)
    print(f"zip: {size} bytes ({len(body)} bytes of JSON); N={n}")
    print(f"{'measure':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, xs in [("CreateFunction -> 201", to_created), ("CreateFunction -> State Active", to_active),
                      ("floor: write 1 MB + one fsync", floor)]:
        print(f"{label:<34} {statistics.median(xs):8.1f} {pct(xs, 99):8.1f} {max(xs):8.1f}")
    if os.environ.get("BENCH_JUDGE") == "no":
        print("goal (a) create->Active p50 < 50 ms: not judged (a debug build: a smoke test, not a measurement)")
        return
    print(f"goal (a) create->Active p50 < 50 ms: {'PASS' if statistics.median(to_active) < 50 else 'FAIL'}"
          f" ({statistics.median(to_active):.1f} ms, {50 / statistics.median(to_active):.2f}x the goal's budget)")


def presign(endpoint, creds_file, name, lua_file, curl_file):
    client = Client(endpoint, credentials(creds_file))
    account = client.account()
    status, data = client.send("POST", "/2015-03-31/functions", create_doc(name, account, package(0)))
    if status not in (201, 409):
        raise SystemExit(f"CreateFunction: {status} {data[:300]!r}")
    wait_active(client, name)
    path = f"/2015-03-31/functions/{name}"
    headers = signed(client.creds, "GET", client.endpoint + path)
    with open(lua_file, "w") as f:
        f.write(f'wrk.method = "GET"\nwrk.path = {json.dumps(path)}\n')
        for k, v in headers.items():
            f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
    with open(curl_file, "w") as f:
        for k, v in headers.items():
            f.write(f"{k}: {v}\n")
    print(path)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "create":
        create(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 7 and sys.argv[1] == "presign":
        presign(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
