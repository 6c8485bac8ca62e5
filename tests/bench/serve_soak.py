#!/usr/bin/env python3
"""Soak test for `tweetlab serve`: N seconds of concurrent clients near capacity, 1 % of the
requests malformed. Reports requests, 5xx among good requests, answers that differ from
`tweetlab predict --format full` by more than 1e-5, and the server's resident memory at the start
and the end. 127.0.0.1 only, a free port, bounded in time.

Usage: serve_soak.py TWEETLAB_BIN MODEL_DIR TEXTS.csv [SECONDS] [CLIENTS]"""
import csv, json, os, random, socket, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error

bin_, model, texts_csv = sys.argv[1:4]
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 600
clients = int(sys.argv[5]) if len(sys.argv) > 5 else 16

work = tempfile.mkdtemp()
full = os.path.join(work, "full.csv")
subprocess.run([bin_, "predict", "--model", model, "--data", texts_csv, "--out", full,
                "--format", "full", "--device", "cpu"], check=True, stderr=subprocess.DEVNULL)
rows = list(csv.DictReader(open(full, newline="", encoding="utf-8")))
classes = [c[2:] for c in rows[0].keys() if c.startswith("p_")]
expected = [(r["text"], [float(r["p_" + c]) for c in classes]) for r in rows]

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([bin_, "serve", "--model", model, "--port", str(port), "--device", "cpu"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}"
for _ in range(600):
    try:
        if urllib.request.urlopen(url + "/ping", timeout=5).status == 200:
            break
    except Exception:
        time.sleep(0.1)
else:
    server.kill(); sys.exit("the server never answered /ping")

def rss_mib():
    for line in open(f"/proc/{server.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

BAD = [b"{not json", b"{}", b'{"inputs": 7}', b'{"inputs": []}', b'{"inputs": ["a", 1]}']
lock = threading.Lock()
stats = {"good": 0, "bad": 0, "good_5xx": 0, "bad_not_4xx": 0, "mismatch": 0, "max_diff": 0.0,
         "errors": 0}

def post(body):
    req = urllib.request.Request(url + "/invocations", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def client(seed, until):
    rng = random.Random(seed)
    while time.time() < until:
        try:
            if rng.random() < 0.01:
                status, _ = post(rng.choice(BAD))
                with lock:
                    stats["bad"] += 1
                    stats["bad_not_4xx"] += not (400 <= status < 500)
                continue
            text, want = expected[rng.randrange(len(expected))]
            status, body = post(json.dumps({"inputs": text}).encode())
            with lock:
                stats["good"] += 1
                if status >= 500:
                    stats["good_5xx"] += 1
                    continue
            got = {d["label"]: d["score"] for d in json.loads(body)}
            diff = max(abs(got[c] - w) for c, w in zip(classes, want))
            with lock:
                stats["max_diff"] = max(stats["max_diff"], diff)
                stats["mismatch"] += diff > 1e-5
        except Exception:
            with lock:
                stats["errors"] += 1

# Warm up, then measure.
for t, _ in expected[:50]:
    post(json.dumps({"inputs": t}).encode())
start_rss = rss_mib()
t0 = time.time()
threads = [threading.Thread(target=client, args=(i, t0 + seconds)) for i in range(clients)]
for t in threads: t.start()
samples = []
while any(t.is_alive() for t in threads):
    time.sleep(min(30, seconds / 10))
    samples.append(round(rss_mib(), 1))
for t in threads: t.join()
elapsed = time.time() - t0
end_rss = rss_mib()
server.terminate()
code = server.wait(timeout=60)
print(json.dumps({**stats, "seconds": round(elapsed, 1), "clients": clients,
                  "good_per_s": round(stats["good"] / elapsed, 1),
                  "rss_mib_start": round(start_rss, 1), "rss_mib_end": round(end_rss, 1),
                  "rss_mib_samples": samples, "exit_code_after_sigterm": code}))
