"""bench/snapshot: GET /api/snapshot for a 1080p JPEG on loopback, against nginx serving the bytes.

Runs the real ``carwash-edge run`` (synthetic 1920x1080 camera at 1 fps, API key check and
metrics in the path) and nginx (one worker process, the same JPEG as a static file), then:

* ``wrk -t1 -c32 -d10s`` against each: requests/s and latency percentiles;
* a sequential keep-alive client (one connection, N requests): p50/p99.

Prints a table with the ratios to nginx and the issue's targets, and writes the figures to
``bench/results/snapshot.json``. Needs Debian's ``wrk`` and ``nginx``
(``scripts/bench snapshot`` installs them).

    python bench/snapshot.py [--seconds 10] [--connections 32] [--sequential 3000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.edge_process import EdgeProcess  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {dir}/www; types {{ image/jpeg jpg; }} }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    result = {"rps": float(rps.group(1))}
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        result[f"p{pct}_ms"] = float(found.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def sequential(
    host: str, port: int, path: str, n: int, headers: dict[str, str]
) -> dict[str, float]:
    conn = http.client.HTTPConnection(host, port)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or not body:
            raise RuntimeError(f"{path}: status {response.status}")
    conn.close()
    samples.sort()
    return {"p50_ms": samples[n // 2], "p99_ms": samples[int(n * 0.99)], "size": len(body)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=3000)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(
                f"bench/snapshot needs {tool}: apt-get install -y wrk nginx-light", file=sys.stderr
            )
            return 2

    work = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    work.chmod(0o755)  # nginx's worker runs unprivileged and must read www/
    (work / "www").mkdir()
    (work / "tmp").mkdir()
    key = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "create", "--role", "viewer",
         "--data-dir", str(work)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    auth = {"Authorization": f"Bearer {key}"}
    # The rate limiter stays in the path; its rate is raised so it measures, not refuses.
    (work / "edge.toml").write_text(
        '[camera]\nsource = "synthetic://?width=1920&height=1080&fps=1&seed=7"\n'
        "[http]\nrate_limit_per_s = 1000000.0\nrate_limit_burst = 1000000\n"
        '[plates]\npolicy = "none"\n'  # the snapshot path alone (bench/plates: the reader)
    )
    with EdgeProcess(work, "--config", str(work / "edge.toml"), log_level="info") as edge:
        edge.wait_online()
        with edge.client(key) as client:
            jpeg = client.get("/api/snapshot").content
        (work / "www" / "snap.jpg").write_bytes(jpeg)
        port = free_port()
        (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=port))
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = subprocess.Popen([nginx_bin, "-c", str(work / "nginx.conf"), "-p", str(work)])
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            host, edge_port = edge.url.removeprefix("http://").split(":")
            # Warm both up (connection set-up, first-request paths).
            sequential(host, int(edge_port), "/api/snapshot", 200, auth)
            sequential("127.0.0.1", port, "/snap.jpg", 200, {})
            results = {
                "jpeg_bytes": len(jpeg),
                "edge_wrk": wrk(f"{edge.url}/api/snapshot", args.seconds, args.connections, auth),
                "nginx_wrk": wrk(
                    f"http://127.0.0.1:{port}/snap.jpg", args.seconds, args.connections, {}
                ),
                "edge_seq": sequential(
                    host, int(edge_port), "/api/snapshot", args.sequential, auth
                ),
                "nginx_seq": sequential("127.0.0.1", port, "/snap.jpg", args.sequential, {}),
            }
        finally:
            nginx.terminate()
            nginx.wait(10)
    shutil.rmtree(work, ignore_errors=True)

    e, n = results["edge_wrk"], results["nginx_wrk"]
    es, ns = results["edge_seq"], results["nginx_seq"]
    ratio = e["rps"] / n["rps"]
    print(f"bench/snapshot: {results['jpeg_bytes'] / 1024:.0f} KB JPEG, 1920x1080, loopback, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"{'':28}{'edge':>12}{'nginx':>12}{'edge/nginx':>12}{'target':>16}")
    print(
        f"{'wrk req/s (c=' + str(args.connections) + ')':28}{e['rps']:>12.0f}{n['rps']:>12.0f}"
        f"{ratio:>12.2f}{'>= 0.50':>16}"
    )
    print(
        f"{'wrk p50 ms':28}{e['p50_ms']:>12.2f}{n['p50_ms']:>12.2f}"
        f"{e['p50_ms'] / n['p50_ms']:>12.2f}"
    )
    print(
        f"{'wrk p99 ms':28}{e['p99_ms']:>12.2f}{n['p99_ms']:>12.2f}"
        f"{e['p99_ms'] / n['p99_ms']:>12.2f}{'<= 10 ms':>16}"
    )
    print(
        f"{'sequential p50 ms':28}{es['p50_ms']:>12.3f}{ns['p50_ms']:>12.3f}"
        f"{es['p50_ms'] / ns['p50_ms']:>12.2f}"
    )
    print(f"{'sequential p99 ms':28}{es['p99_ms']:>12.3f}{ns['p99_ms']:>12.3f}"
          f"{es['p99_ms'] / ns['p99_ms']:>12.2f}{'<= 1 ms':>16}")  # fmt: skip
    met = ratio >= 0.5 and e["p99_ms"] <= 10 and es["p99_ms"] <= 1 and e["non_2xx"] == 0
    print("targets met" if met else "TARGETS NOT MET")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "snapshot.json").write_text(json.dumps(results, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
