#!/usr/bin/env python3
"""bf16 inference against fp32 on your own tweets (a benchmark, not a test).

Runs `tweetlab predict` on one fine-tuned run over a CSV with --precision fp32, then with bf16 on
each native path this CPU has (AMX; AVX512-BF16, by hiding AMX with TWEETLAB_BF16_UNITS=avx512),
and prints per path: the largest and mean |p_bf16 - p_fp32| over every class probability, and
the share of texts given the same label. Prints one JSON line per path.

Usage:
  tests/bench/precision.py --model RUN_DIR --data ../shared/data/disaster-tweets/test.csv
Needs a release build (TWEETLAB_BIN, default target/release/tweetlab)."""
import argparse, csv, json, os, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--bin", default=os.environ.get(
    "TWEETLAB_BIN", os.path.join(HERE, "../../target/release/tweetlab")))
a = ap.parse_args()
work = tempfile.mkdtemp(prefix="precision-")


def predict(tag, precision, env=None):
    out = os.path.join(work, f"{tag}.csv")
    subprocess.run([a.bin, "--precision", precision, "predict", "--model", a.model,
                    "--data", a.data, "--out", out, "--format", "full"],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    with open(out, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = [c for c in reader.fieldnames if c.startswith("p_")]
        return [[float(r[c]) for c in cols] for r in reader]


def bench_path(env):
    """The bf16 path `bench` reports under `env` (one tiny step, to read the field)."""
    r = subprocess.run([a.bin, "--precision", "bf16", "bench", "--model", a.model, "--steps", "1",
                        "--warmup", "0", "--json"], check=True, capture_output=True, text=True,
                       env={**os.environ, **env})
    return json.loads(r.stdout.strip().splitlines()[-1])["precision"]


reference = predict("fp32", "fp32")
argmax = lambda p: max(range(len(p)), key=p.__getitem__)
seen = set()
for env in ({}, {"TWEETLAB_BF16_UNITS": "avx512"}, {"TWEETLAB_BF16_UNITS": "none"}):
    path = bench_path(env)
    if path in seen:
        continue
    seen.add(path)
    probs = predict(path, "bf16", env)
    diffs = [abs(x - y) for p, q in zip(probs, reference) for x, y in zip(p, q)]
    same = sum(argmax(p) == argmax(q) for p, q in zip(probs, reference))
    print(json.dumps({"path": path, "texts": len(probs), "max_abs_diff": round(max(diffs), 5),
                      "mean_abs_diff": round(sum(diffs) / len(diffs), 6),
                      "same_label": same, "same_label_share": round(same / len(probs), 5)}),
          flush=True)
