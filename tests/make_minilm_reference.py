#!/usr/bin/env python3
"""What Hugging Face transformers' BertModel computes on the default model (all-MiniLM-L6-v2)
for the texts of tests/minilm.rs: the reference tweetlab's own encoder is checked against.

Usage: python make_minilm_reference.py MODEL_DIR
  (MODEL_DIR: `tweetlab model fetch` prints it; writes tests/fixtures/minilm-reference/)
Writes hidden_states.safetensors (one tensor per text, `text.N`: the last hidden states of its
real tokens, [tokens, 384], float32, each text run alone so no padding is involved) and
reference.json (the texts, the token ids transformers' tokenizer gave, the versions used).
Needs torch, transformers and safetensors (not part of CI)."""
import json, os, sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures/minilm-reference")
# tests/minilm.rs reads these texts back from reference.json.
TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "I love fruits",
    "Residents asked to 'shelter in place' are being notified by officers #wildfire",
    "ok",
]

model_dir = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
states, ids = {}, []
with torch.no_grad():
    for i, text in enumerate(TEXTS):
        enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=64)
        out = model(**enc).last_hidden_state[0]
        states[f"text.{i}"] = out.contiguous().float()
        ids.append(enc["input_ids"][0].tolist())
os.makedirs(OUT, exist_ok=True)
save_file(states, os.path.join(OUT, "hidden_states.safetensors"))
with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "texts": TEXTS,
               "input_ids": ids, "transformers": transformers.__version__,
               "torch": torch.__version__}, f)
    f.write("\n")
print(f"wrote {OUT}: {[len(i) for i in ids]} tokens")
