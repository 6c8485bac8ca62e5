#!/usr/bin/env python3
"""What Hugging Face transformers' encoder (BertModel, MPNetModel: whichever the config names)
computes on a real model for the texts below: the reference tweetlab's own encoder is checked
against (tests/minilm.rs for all-MiniLM-L6-v2, tests/mpnet.rs for all-mpnet-base-v2).

Usage: python make_encoder_reference.py MODEL_DIR NAME
  (MODEL_DIR: `tweetlab model fetch [all-mpnet-base-v2]` fetches it into tweetlab's cache;
  writes tests/fixtures/NAME-reference/, NAME being minilm or mpnet)
Writes hidden_states.safetensors (one tensor per text, `text.N`: the last hidden states of its
real tokens, [tokens, hidden], float32, each text run alone so no padding is involved) and
reference.json (the texts, the token ids transformers' tokenizer gave, the versions used).
Needs torch, transformers and safetensors (not part of CI)."""
import json, os, sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, f"fixtures/{sys.argv[2]}-reference")
# tests/minilm.rs reads these texts back from reference.json.
TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "I love fruits",
    "Residents asked to 'shelter in place' are being notified by officers #wildfire",
    "ok",
]

model_dir = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
model_id = {"bert": "sentence-transformers/all-MiniLM-L6-v2",
            "mpnet": "sentence-transformers/all-mpnet-base-v2"}[AutoConfig.from_pretrained(model_dir).model_type]
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
    json.dump({"model": model_id, "texts": TEXTS,
               "input_ids": ids, "transformers": transformers.__version__,
               "torch": torch.__version__}, f)
    f.write("\n")
print(f"wrote {OUT}: {[len(i) for i in ids]} tokens")
