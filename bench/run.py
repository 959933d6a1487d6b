#!/usr/bin/env python3
"""ztpd benchmarks, from one run on this machine (`just bench`).

1. In-process: the cost of one policy call (new store + instantiate + call + drop), p50/p99
   (cargo bench -p ztpd --bench policy_call).
2. HTTP, with wrk exactly as ../shared/baseline/bench.py runs it (-t2 -c32, 10 s, the
   rotate.lua script over the same 100 MACs): ztpd's /dynconfig, ztpd's static /ping in the
   same binary, and the baseline's Flask app under gunicorn (2 sync workers).
3. ztpd's idle RSS after start-up.
4. IOS XE call-backs: wrk POSTs /callback with X-Serial-Number over the baseline's 100
   serials (and a valid call-back token for ztpd) against ztpd and the baseline's FastAPI
   app under uvicorn with 2 workers. A device calling back while its job runs is
   acknowledged without a second job, so after the first 100 this is ztpd's ACK path.
6. Policy activation: a tenant's policy file is replaced (write beside, rename over) and
   the time until the first reply carrying the new version is measured: for versions
   never compiled before — an edit of the live 47 KB policy (the same code plus a custom
   section: a new hash, so nothing is cached) and the 167 KB hostile policy — and for
   versions already in the compiled cache.
7. 100 tenants (each with its own 10-switch inventory, all on the demo policy): time from
   process start to ready and idle RSS, on a first start and on a restart from the
   compiled cache.
8. Noisy neighbour: tenant "quiet" measured with wrk alone, then while 8 clients send
   tenant "noisy" requests that spin until its 100 ms CPU limit (the tenant may run
   BENCH_NOISY_INSTANCES, default 2, at once).
5. Mass run: 2,000 simulated devices (an in-process russh device simulator) fetch the
   script, call back and all receive their config (cargo bench -p ztpd-e2e --bench mass_run).

The baseline is copied to a scratch folder first (../shared is read-only). Servers listen
on loopback only. Results go to target/bench/<stamp>.json; ratios are what to compare,
since the machine is shared and absolute numbers drift.
"""
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "..", "shared", "baseline")
VENV = os.environ.get("ZTPD_VENV", os.path.join(ROOT, ".venv"))
ZTPD = os.path.join(ROOT, "target", "release", "ztpd")
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = 2
# Concurrent instances the looping tenant may run in the noisy-neighbour benchmark.
NOISY_INSTANCES = int(os.environ.get("BENCH_NOISY_INSTANCES", "2"))


def log(msg):
    print(msg, flush=True)


def ensure_python_deps():
    py = os.path.join(VENV, "bin", "python")
    need = [pkg for mod, pkg in (("flask", "flask"), ("gunicorn", "gunicorn"), ("jinja2", "jinja2"),
                                 ("fastapi", "fastapi"), ("uvicorn", "uvicorn[standard]"),
                                 ("yaml", "pyyaml"))
            if subprocess.call([py, "-c", f"import {mod}"], stderr=subprocess.DEVNULL) != 0]
    if need:
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", *need])


def wait_ready(port, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return time.time() - t0
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"server on 127.0.0.1:{port} not ready after {timeout}s")


def rss_kib(pid):
    """Summed RSS of a process and its children (gunicorn has a master and workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, cwd, env=None):
        self.name, self.port = name, port
        self.log = open(os.path.join(tempfile.gettempdir(), f"ztpd-bench-{name}.log"), "w")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(env or {})})
        self.ready_s = wait_ready(port)
        time.sleep(0.5)
        self.idle_rss_mib = rss_kib(self.proc.pid) / 1024

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def wrk(port, path, header=None, keyfile=None, duration=DURATION, scratch=None, method="GET",
        extra=()):
    cmd = ["wrk", "-t2", "-c32", f"-d{duration}s", "--timeout", "10s", *extra,
           "-s", os.path.join(scratch, "wrk", "rotate.lua"),
           f"http://127.0.0.1:{port}{path}", "--", method]
    if header:
        cmd += [header, os.path.join(scratch, keyfile)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(line[len("WRKJSON "):])
    r["errors"] = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return r


def measure(server, path, scratch, header=None, keyfile=None, method="GET", extra=()):
    wrk(server.port, path, header, keyfile, duration=WARMUP, scratch=scratch, method=method,
        extra=extra)
    peak = 0
    r = wrk(server.port, path, header, keyfile, scratch=scratch, method=method, extra=extra)
    peak = max(peak, rss_kib(server.proc.pid) / 1024)
    r["rss_after_mib"] = peak
    log(f"  {server.name:22s} {path:11s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
        f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}")
    return r


def policy_call_bench():
    out = subprocess.run(["cargo", "bench", "-q", "-p", "ztpd", "--bench", "policy_call"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCHJSON "))
    return json.loads(line[len("BENCHJSON "):])


def mass_run_bench():
    out = subprocess.run(["cargo", "bench", "-q", "-p", "ztpd-e2e", "--bench", "mass_run"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCHJSON "))
    return json.loads(line[len("BENCHJSON "):])


def leb128(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def edited_copy(src, dst, note):
    """`src` plus a custom section (id 0) holding `note`: valid, new hash, same code."""
    name = b"ztpd-bench-edit"
    payload = leb128(len(name)) + name + note.encode()
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.write(f.read() + b"\x00" + leb128(len(payload)) + payload)


def activation_bench():
    """Time from replacing a policy file to the first reply from the new version."""
    work = tempfile.mkdtemp(prefix="ztpd-bench-swap-")
    live = os.path.join(work, "policy.wasm")
    pol = os.path.join(ROOT, "target", "wasm32-wasip2", "policy")
    edited = os.path.join(work, "arista_dynamic_edited.wasm")
    edited_copy(os.path.join(pol, "arista_dynamic.wasm"), edited, f"edit {time.time()}")
    versions = [os.path.join(pol, "arista_dynamic.wasm"), os.path.join(pol, "hostile.wasm"),
                edited]
    shutil.copy(versions[0], live)
    config = os.path.join(work, "ztpd.toml")
    with open(config, "w") as f:
        f.write(f'''listen = "127.0.0.1:18085"
data_dir = "{os.path.join(work, "data")}"
[[tenants]]
name = "default"
default = true
policy = "{live}"
templates = "{os.path.join(ROOT, "templates")}"
inventory = {{ file = "{os.path.join(ROOT, "inventory/arista/swinfo.json")}", key = "mac" }}
''')
    import hashlib
    digest = [hashlib.sha256(open(v, "rb").read()).hexdigest() for v in versions]
    srv = Server("ztpd-swap", [ZTPD, "serve", "--config", config], 18085, ROOT,
                 env={"RUST_LOG": "warn", "ZTPD_LISTEN": "127.0.0.1:18085"})

    def live_version():
        req = urllib.request.Request("http://127.0.0.1:18085/dynconfig",
                                     headers={"X-Arista-SystemMAC": "00:1c:73:00:00:01"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.headers["X-Ztpd-Policy-Version"]

    def swap_to(i):
        tmp = live + ".tmp"
        shutil.copy(versions[i], tmp)
        t0 = time.perf_counter()
        os.rename(tmp, live)
        while time.perf_counter() - t0 < 10:
            if live_version() == digest[i]:
                return (time.perf_counter() - t0) * 1000
            time.sleep(0.001)
        raise RuntimeError("new policy version not live within 10 s")

    try:
        first_edit = swap_to(2)                 # never compiled: Cranelift runs (47 KB)
        first = swap_to(1)                      # never compiled: Cranelift runs (167 KB)
        cached = sorted(swap_to(i % 2) for i in range(10))  # both versions now cached
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"first_ms": first, "first_edit_ms": first_edit,
            "cached_median_ms": cached[len(cached) // 2], "cached_max_ms": cached[-1]}


def tenant_block(name, policy, inventory, extra=""):
    return f'''
[[tenants]]
name = "{name}"
policy = "{policy}"
templates = "{os.path.join(ROOT, "templates")}"
inventory = {{ file = "{inventory}", key = "mac" }}
{extra}
'''


def hundred_tenants_bench():
    work = tempfile.mkdtemp(prefix="ztpd-bench-100-")
    with open(os.path.join(ROOT, "inventory", "arista", "swinfo.json")) as f:
        swinfo = list(json.load(f).items())
    policy = os.path.join(ROOT, "target", "wasm32-wasip2", "policy", "arista_dynamic.wasm")
    blocks = []
    for t in range(100):
        inv = os.path.join(work, f"t{t:03}.json")
        with open(inv, "w") as f:
            json.dump(dict(swinfo[t * 10:(t + 1) * 10]), f)
        blocks.append(tenant_block(f"t{t:03}", policy, inv))
    config = os.path.join(work, "ztpd.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:18086"\ndata_dir = "{os.path.join(work, "data")}"\n')
        f.write("".join(blocks))
    out = {}
    try:
        for label in ("first_start", "restart"):
            srv = Server(f"ztpd-100-{label}", [ZTPD, "serve", "--config", config], 18086, ROOT,
                         env={"RUST_LOG": "warn", "ZTPD_LISTEN": "127.0.0.1:18086"})
            out[label] = {"ready_s": srv.ready_s, "idle_rss_mib": srv.idle_rss_mib}
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def noisy_neighbour_bench(scratch):
    import concurrent.futures
    work = tempfile.mkdtemp(prefix="ztpd-bench-noisy-")
    pol = os.path.join(ROOT, "target", "wasm32-wasip2", "policy")
    inv = os.path.join(ROOT, "inventory", "arista", "swinfo.json")
    config = os.path.join(work, "ztpd.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:18087"\ndata_dir = "{os.path.join(work, "data")}"\n')
        f.write(tenant_block("quiet", os.path.join(pol, "arista_dynamic.wasm"), inv))
        f.write(tenant_block("noisy", os.path.join(pol, "hostile.wasm"), inv,
                             "limits = { cpu_ms = 100, instances = NOISY_INSTANCES }".replace("NOISY_INSTANCES", str(NOISY_INSTANCES))))
    srv = Server("ztpd-noisy", [ZTPD, "serve", "--config", config], 18087, ROOT,
                 env={"RUST_LOG": "error", "ZTPD_LISTEN": "127.0.0.1:18087"})
    stop = threading.Event()
    looped = [0]

    def spin():
        while not stop.is_set():
            req = urllib.request.Request("http://127.0.0.1:18087/t/noisy/dynconfig?attack=loop",
                                         headers={"X-Arista-SystemMAC": "00:1c:73:00:00:01"})
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except Exception:
                looped[0] += 1      # the expected 500: CPU limit

    try:
        alone = measure(srv, "/t/quiet/dynconfig", scratch, "X-Arista-SystemMAC", "keys/macs100.txt")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(spin)
            time.sleep(1)
            noisy = measure(srv, "/t/quiet/dynconfig", scratch, "X-Arista-SystemMAC",
                            "keys/macs100.txt")
            stop.set()
    finally:
        stop.set()
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"alone": alone, "with_noisy": noisy, "noisy_loops_stopped": looped[0]}


def script_token(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/script.py", timeout=5) as r:
        script = r.read().decode()
    line = next(l for l in script.splitlines() if l.startswith("TOKEN = "))
    return json.loads(line[len("TOKEN = "):])


def main():
    if not os.path.exists(ZTPD):
        sys.exit(f"{ZTPD} is missing: run `cargo build --release -p ztpd` (just bench does)")
    ensure_python_deps()
    results = {"when": dt.datetime.now().isoformat(timespec="seconds"),
               "wrk": f"-t2 -c32 -d{DURATION}s", "nproc": os.cpu_count()}

    log("policy call, in process:")
    pc = policy_call_bench()
    results["policy_call"] = pc
    log(f"  p50 {pc['policy_call_p50_us']:.1f} µs  p99 {pc['policy_call_p99_us']:.1f} µs "
        f"(with template render: p50 {pc['decide_p50_us']:.1f} µs)")

    scratch = tempfile.mkdtemp(prefix="ztpd-bench-baseline-")
    try:
        for part in ("arista", "iosxe", "keys", "wrk"):
            shutil.copytree(os.path.join(BASELINE, part), os.path.join(scratch, part))
        data_dir = tempfile.mkdtemp(prefix="ztpd-bench-data-")
        log(f"HTTP, wrk -t2 -c32 -d{DURATION}s over 100 MACs:")
        ztpd_env = {"ZTPD_LISTEN": "127.0.0.1:18080", "RUST_LOG": "warn", "ZTPD_DATA_DIR": data_dir}
        # First start compiles the policies (and fills the compiled cache); the second,
        # like every restart, loads them from the cache.
        cold = Server("ztpd-cold", [ZTPD, "serve"], 18080, ROOT, env=ztpd_env)
        results["ztpd_idle_rss_cold_mib"] = cold.idle_rss_mib
        results["ztpd_ready_cold_s"] = cold.ready_s
        cold.stop()
        ztpd = Server("ztpd", [ZTPD, "serve"], 18080, ROOT, env=ztpd_env)
        results["ztpd_idle_rss_mib"] = ztpd.idle_rss_mib
        results["ztpd_ready_s"] = ztpd.ready_s
        try:
            results["ztpd_dynconfig"] = measure(ztpd, "/dynconfig", scratch,
                                                "X-Arista-SystemMAC", "keys/macs100.txt")
            results["ztpd_ping"] = measure(ztpd, "/ping", scratch)
            token = script_token(18080)
            results["ztpd_callback"] = measure(ztpd, "/callback", scratch, "X-Serial-Number",
                                               "keys/serials100.txt", method="POST",
                                               extra=("-H", f"X-Ztpd-Token: {token}"))
        finally:
            ztpd.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        gunicorn = Server("gunicorn-flask-2w",
                          [os.path.join(VENV, "bin", "gunicorn"), "-w", "2", "-k", "sync",
                           "-b", "127.0.0.1:18002", "app:app"], 18002,
                          os.path.join(scratch, "arista"))
        try:
            results["gunicorn_dynconfig"] = measure(gunicorn, "/dynconfig", scratch,
                                                    "X-Arista-SystemMAC", "keys/macs100.txt")
        finally:
            gunicorn.stop()
        uvicorn = Server("fastapi-uvicorn-2w",
                         [os.path.join(VENV, "bin", "uvicorn"), "main:app", "--workers", "2",
                          "--host", "127.0.0.1", "--port", "18004", "--log-level", "warning"],
                         18004, os.path.join(scratch, "iosxe"))
        try:
            results["fastapi_callback"] = measure(uvicorn, "/callback", scratch, "X-Serial-Number",
                                                  "keys/serials100.txt", method="POST")
        finally:
            uvicorn.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    log("policy activation (file replaced -> first reply from the new version):")
    act = activation_bench()
    results["activation"] = act
    log(f"  new version: edited 47 KB policy {act['first_edit_ms']:.0f} ms, 167 KB policy "
        f"{act['first_ms']:.0f} ms; cached versions median "
        f"{act['cached_median_ms']:.0f} ms, max {act['cached_max_ms']:.0f} ms")

    log("100 tenants:")
    hundred = hundred_tenants_bench()
    results["hundred_tenants"] = hundred
    log(f"  first start ready in {hundred['first_start']['ready_s']:.2f} s, "
        f"{hundred['first_start']['idle_rss_mib']:.1f} MiB; restart ready in "
        f"{hundred['restart']['ready_s']:.2f} s, {hundred['restart']['idle_rss_mib']:.1f} MiB")

    log(f"noisy neighbour (quiet tenant alone, then while 8 clients make a tenant limited to "
        f"{NOISY_INSTANCES} instances run endless loops):")
    scratch2 = tempfile.mkdtemp(prefix="ztpd-bench-wrk-")
    shutil.copytree(os.path.join(BASELINE, "wrk"), os.path.join(scratch2, "wrk"))
    shutil.copytree(os.path.join(BASELINE, "keys"), os.path.join(scratch2, "keys"))
    noisy = noisy_neighbour_bench(scratch2)
    shutil.rmtree(scratch2, ignore_errors=True)
    results["noisy_neighbour"] = noisy
    na, nn = noisy["alone"], noisy["with_noisy"]

    log("mass run, 2000 simulated devices:")
    mr = mass_run_bench()
    results["mass_run"] = mr
    log(f"  {mr['received']}/{mr['devices']} configured in {mr['wall_s']:.1f} s, peak RSS "
        f"{mr['peak_rss_mib']:.1f} MiB, push concurrency {mr['push_concurrency_peak']}")

    z, s, g = (results[k]["rps"] for k in ("ztpd_dynconfig", "ztpd_ping", "gunicorn_dynconfig"))
    zc, fc = results["ztpd_callback"]["rps"], results["fastapi_callback"]["rps"]
    rows = [
        ("/dynconfig vs gunicorn Flask (2 workers)", f"{z / g:.1f}x", ">= 10x", z / g >= 10),
        ("/dynconfig vs static /ping, same binary", f"{100 * z / s:.0f}%", ">= 50%", z / s >= 0.5),
        ("policy call p50", f"{pc['policy_call_p50_us']:.1f} µs", "<= 15 µs",
         pc["policy_call_p50_us"] <= 15),
        ("policy call p99", f"{pc['policy_call_p99_us']:.1f} µs", "", True),
        ("ztpd idle RSS (restart, compiled cache)", f"{results['ztpd_idle_rss_mib']:.1f} MiB",
         "<= 30 MiB", results["ztpd_idle_rss_mib"] <= 30),
        ("ztpd idle RSS (first start, compiling)", f"{results['ztpd_idle_rss_cold_mib']:.1f} MiB",
         "", True),
        ("/callback ACKs vs FastAPI (2 workers)", f"{zc / fc:.1f}x", ">= 10x", zc / fc >= 10),
        ("policy activation, new version (edited 47 KB policy)", f"{act['first_edit_ms']:.0f} ms",
         "< 100 ms", act["first_edit_ms"] < 100),
        ("policy activation, new version (167 KB policy)", f"{act['first_ms']:.0f} ms",
         "< 100 ms", act["first_ms"] < 100),
        ("policy activation, cached version (median)", f"{act['cached_median_ms']:.0f} ms",
         "< 100 ms", act["cached_median_ms"] < 100),
        ("100 tenants: restart (compiled cache) to ready", f"{hundred['restart']['ready_s']:.2f} s",
         "< 1 s", hundred["restart"]["ready_s"] < 1),
        ("100 tenants: idle RSS after restart", f"{hundred['restart']['idle_rss_mib']:.1f} MiB",
         "<= 150 MiB", hundred["restart"]["idle_rss_mib"] <= 150),
        ("quiet tenant beside a looping one: req/s kept",
         f"{100 * nn['rps'] / na['rps']:.0f}% ({nn['rps']:.0f} vs {na['rps']:.0f})", "", True),
        ("quiet tenant beside a looping one: p99",
         f"{nn['p99_ms']:.1f} ms (alone {na['p99_ms']:.1f} ms)", "< 100 ms (the CPU limit)",
         nn["p99_ms"] < 100),
        ("mass run: 2000 devices configured", f"{mr['received']} in {mr['wall_s']:.1f} s", "all",
         mr["received"] == mr["devices"]),
        ("mass run: ztpd peak RSS", f"{mr['peak_rss_mib']:.1f} MiB", "<= 300 MiB",
         mr["peak_rss_mib"] <= 300),
        ("mass run: push concurrency", f"{mr['push_concurrency_peak']} (limit {mr['push_limit']})",
         "", True),
    ]
    results["summary"] = [{"what": w, "value": v, "target": t, "met": m} for w, v, t, m in rows]
    log("\n| measure | value | target | met |\n|---|---|---|---|")
    for w, v, t, m in rows:
        log(f"| {w} | {v} | {t} | {'yes' if m else ('NO' if t else '')} |")
    log(f"\nreq/s: ztpd /dynconfig {z:.0f}, ztpd /ping {s:.0f}, gunicorn /dynconfig {g:.0f}, "
        f"ztpd /callback {zc:.0f}, FastAPI /callback {fc:.0f}")
    out_dir = os.path.join(ROOT, "target", "bench")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
