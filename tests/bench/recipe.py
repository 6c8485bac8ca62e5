#!/usr/bin/env python3
"""Training recipes compared on your own splits of a labelled CSV (a benchmark, not a test).

For each seed, the file is split once, stratified by label: 20 % held out, never seen by
training or by its choice of the best epoch; `tweetlab train` gets the other 80 % (and splits its
own validation part off it as any run does), then `tweetlab eval` scores the kept checkpoint on
the held-out part. Every recipe sees the same splits; seeds run in turn, recipes alternating
within each seed, so a slow minute on the machine falls on all of them.

Usage:
  tests/bench/recipe.py --data ../shared/data/disaster-tweets/train.csv --seeds 1 2 3 \
      --recipe default= --recipe "3 epochs=--epochs 3"
A recipe may start with `@keyword`: its train and held-out files carry the keyword column in the
text (`bush fires: <text>`, the keyword's %20 decoded; rows without one unchanged), which measures
feeding the keyword before building it into every path that reads text. `@ensemble=K` trains K
models (seeds 100*seed+1..K, each with its own validation part) and scores the mean of their
probabilities on the held-out part, which measures averaging before `train --ensemble` exists
(0/1 files only: it reads `p_disaster` and scores label 1). `@distil=NAME` runs `tweetlab distill`
with the model recipe NAME trained for the same seed as its teacher (NAME must come earlier in the
list, or be kept from an earlier run in --work with --reuse), on the seed's training part and the
--unlabelled files.
Prints one line per run and a table: held-out F1 per seed, mean, spread (max - min), minutes
per run. Needs a release build (TWEETLAB_BIN, default target/release/tweetlab)."""
import argparse, csv, json, os, random, shlex, statistics, subprocess, sys, tempfile, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
ap.add_argument("--recipe", action="append", required=True,
                help="NAME=ARGS: extra `tweetlab train` arguments")
ap.add_argument("--label-column", default="target")
ap.add_argument("--held-out", type=float, default=0.2)
ap.add_argument("--bin", default=os.environ.get(
    "TWEETLAB_BIN", os.path.join(HERE, "../../target/release/tweetlab")))
ap.add_argument("--json-out")
ap.add_argument("--unlabelled", nargs="*", default=[],
                help="CSVs of unlabelled tweets for @distil recipes")
ap.add_argument("--work", help="working folder (default: a new temporary one)")
ap.add_argument("--reuse", action="store_true",
                help="score a model already trained in --work instead of training it again")
a = ap.parse_args()
recipes = [(r.split("=", 1)[0], shlex.split(r.split("=", 1)[1])) for r in a.recipe]
KEYWORD = "@keyword"

with open(a.data, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames
    rows = [r for r in reader if r[a.label_column].strip() != ""]


def split(seed):
    rng = random.Random(seed)
    by_label = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r[a.label_column].strip(), []).append(i)
    held = set()
    for idx in by_label.values():
        rng.shuffle(idx)
        held.update(idx[: round(len(idx) * a.held_out)])
    return ([r for i, r in enumerate(rows) if i not in held],
            [r for i, r in enumerate(rows) if i in held])


def write(path, part, keyword=False):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in part:
            k = urllib.parse.unquote(r.get("keyword") or "").strip()
            w.writerow({**r, "text": f"{k}: {r['text']}"} if keyword and k else r)


def ensemble_f1(train_csv, test_csv, out, seed, members, extra):
    """F1 of class 1 for the mean of `members` models' probabilities (argmax, as `eval`)."""
    mean = None
    for m in range(1, members + 1):
        model, preds = f"{out}-{m}", f"{out}-{m}.csv"
        subprocess.run([a.bin, "train", "--data", train_csv, "--out", model,
                        "--seed", str(100 * seed + m), "--json", *extra],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([a.bin, "predict", "--model", model, "--data", test_csv, "--out", preds,
                        "--format", "full"], check=True, stdout=subprocess.DEVNULL)
        with open(preds, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "p_disaster" not in reader.fieldnames:
                sys.exit(f"@ensemble needs a 0/1 label column; {preds} has {reader.fieldnames}")
            p = [float(r["p_disaster"]) for r in reader]
        mean = p if mean is None else [x + y for x, y in zip(mean, p)]
    with open(test_csv, newline="", encoding="utf-8") as f:
        truth = [r[a.label_column].strip() == "1" for r in csv.DictReader(f)]
    predicted = [x / members > 0.5 for x in mean]
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    return 2 * tp / (2 * tp + fp + fn)


results = {name: {} for name, _ in recipes}
work = a.work or tempfile.mkdtemp(prefix="recipe-")
os.makedirs(work, exist_ok=True)
for seed in a.seeds:
    train, test = split(seed)
    for name, extra in recipes:
        keyword = KEYWORD in extra
        members = next((int(x.split("=")[1]) for x in extra if x.startswith("@ensemble=")), 0)
        teacher = next((x.split("=", 1)[1] for x in extra if x.startswith("@distil=")), None)
        extra = [x for x in extra if not x.startswith("@")]
        tag = "-keyword" if keyword else ""
        train_csv = os.path.join(work, f"train-{seed}{tag}.csv")
        test_csv = os.path.join(work, f"test-{seed}{tag}.csv")
        if not os.path.exists(train_csv):  # recipes of one seed share its files
            write(train_csv, train, keyword)
            write(test_csv, test, keyword)
        out = os.path.join(work, f"{name.replace(' ', '_')}-{seed}")
        start = time.time()
        reused = a.reuse and os.path.exists(os.path.join(out, "tweetlab_run.json"))
        if members:
            f1 = ensemble_f1(train_csv, test_csv, out, seed, members, extra)
        else:
            if teacher:
                teacher_dir = os.path.join(work, f"{teacher.replace(' ', '_')}-{seed}")
                unlabelled = [x for f in a.unlabelled for x in ("--unlabelled", f)]
                command = ["distill", "--teacher", teacher_dir, *unlabelled]
            else:
                command = ["train"]
            if not reused:
                subprocess.run([a.bin, *command, "--data", train_csv, "--out", out,
                                "--seed", str(seed), "--json", *extra],
                               check=True, stdout=subprocess.DEVNULL)
            # A recipe's --precision scores its model in the same arithmetic it trained in.
            precision = extra[extra.index("--precision"):][:2] if "--precision" in extra else []
            ev = subprocess.run([a.bin, *precision, "eval", "--model", out, "--data", test_csv,
                                 "--json"], check=True, capture_output=True, text=True)
            f1 = json.loads(ev.stdout)["f1"]
        seconds = time.time() - start
        results[name][seed] = (f1, seconds)
        print(f"seed {seed} {name}: held-out F1 {f1:.4f} ({len(train)} trained, {len(test)} held out), "
              f"{seconds / 60:.1f} min{' (model reused, minutes of scoring only)' if reused else ''}",
              flush=True)

print(f"\n| recipe | {' | '.join(f'seed {s}' for s in a.seeds)} | mean | spread | minutes per run |")
print(f"|---|{'---|' * len(a.seeds)}---|---|---|")
for name, _ in recipes:
    f1s = [results[name][s][0] for s in a.seeds]
    mins = statistics.mean(results[name][s][1] for s in a.seeds) / 60
    print(f"| {name} | {' | '.join(f'{x:.4f}' for x in f1s)} | {statistics.mean(f1s):.4f} | "
          f"{max(f1s) - min(f1s):.4f} | {mins:.1f} |")
if a.json_out:
    with open(a.json_out, "w") as f:
        json.dump({n: {str(s): v for s, v in r.items()} for n, r in results.items()}, f, indent=1)
