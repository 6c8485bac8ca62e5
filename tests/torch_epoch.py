#!/usr/bin/env python
"""PyTorch reference for `tweetlab train`'s epoch time (README, "CPU speed").

One epoch of BertForSequenceClassification fine-tuning on a labelled CSV, the way a Hugging Face
Trainer user would run it on a CPU: texts truncated to --max-len tokens, random batches padded to
the longest text in each batch (DataCollatorWithPadding), AdamW (weight decay 0.01 except biases
and LayerNorm), 10% linear warm-up then linear decay, gradient clipping at 1.0, dropout on.
Prints one JSON line: the epoch's wall time (the training loop only), samples/s, and the peak RSS.

Usage (the venv of shared/bench/README.md):
  /tmp/torchref/bin/python tests/torch_epoch.py --model DIR --data train.csv --threads 2
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_torch.py
import argparse
import csv
import json
import platform
import random
import resource
import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers import logging as hf_logging

hf_logging.set_verbosity_error()
ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--max-len", type=int, default=64)
ap.add_argument("--lr", type=float, default=5e-5)
ap.add_argument("--seed", type=int, default=42)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
random.seed(a.seed)

texts, labels = [], []
with open(a.data, newline="", encoding="utf-8", errors="replace") as f:
    for row in csv.DictReader(f):
        t = (row.get("target") or "").strip()
        if t in ("0", "1"):
            texts.append(row["text"])
            labels.append(int(t))

tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2)
enc = tok(texts, truncation=True, max_length=a.max_len)

order = list(range(len(texts)))
random.shuffle(order)
batches = [order[i : i + a.batch] for i in range(0, len(order), a.batch)]

no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n
groups = [
    {"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=a.lr)
total = len(batches)
warmup = max(1, int(0.1 * total))
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: s / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
)

model.train()
t0 = time.perf_counter()
tokens = 0
for b in batches:
    feats = [{k: enc[k][i] for k in enc.keys()} for i in b]
    batch = tok.pad(feats, return_tensors="pt")
    tokens += int(batch["input_ids"].numel())
    out = model(**batch, labels=torch.tensor([labels[i] for i in b]))
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
epoch_s = time.perf_counter() - t0

print(
    json.dumps(
        {
            "impl": "pytorch",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "samples": len(texts),
            "batches": total,
            "padded_tokens": tokens,
            "epoch_s": round(epoch_s, 1),
            "samples_per_s": round(len(texts) / epoch_s, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "host": platform.node(),
        }
    ),
    flush=True,
)
