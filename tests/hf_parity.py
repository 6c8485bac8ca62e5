#!/usr/bin/env python3
"""Probabilities from Hugging Face transformers for a tweetlab checkpoint.

Usage: python hf_parity.py MODEL_DIR [--texts-from CSV] [--out JSON]
Without --texts-from it uses the fixed texts below and writes
MODEL_DIR/transformers_probs.json (the fixture tests/hf_parity.rs compares against): every
class's probability per text, and the class names transformers read from config.json.
With --texts-from it scores the CSV's `text` column (compare with `tweetlab predict --format full`).
Needs torch and transformers (not part of CI)."""
import argparse, csv, json, os
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "Residents asked to 'shelter in place' are being notified by officers",
    "This new album is fire, every track slaps",
    "Flood waters keep rising, the bridge on River Rd is closed #flood",
    "ok",
    "I love fruits and sunny mornings at the beach with my dog",
    "Earthquake!!! buildings shaking downtown http://t.co/abc @news",
    "Évacuation immédiate: le barrage cède 😱",
]

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--texts-from")
ap.add_argument("--out")
ap.add_argument("--max-len", type=int, default=128)
a = ap.parse_args()
texts = TEXTS
if a.texts_from:
    with open(a.texts_from, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForSequenceClassification.from_pretrained(a.model).eval()
probs = []
with torch.inference_mode():
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
        probs += torch.softmax(model(**enc).logits, -1).tolist()
out = a.out or os.path.join(a.model, "transformers_probs.json")
with open(out, "w") as f:
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    json.dump({"texts": texts, "labels": labels, "probabilities": probs}, f, indent=1, ensure_ascii=False)
print(f"wrote {len(probs)} probabilities to {out}")
