#!/usr/bin/env python3
"""Tiny random checkpoints of the RoBERTa, XLM-RoBERTa, DistilBERT and MPNet families, made by
Hugging Face transformers itself, with the probabilities transformers gives for them.

Usage: python make_family_fixtures.py [NAME ...]   (writes tests/fixtures/tiny-NAME for each of
roberta, xlm-roberta, distilbert, mpnet; all four without arguments)
Each directory is what `save_pretrained` writes (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json) plus transformers_probs.json: the texts of hf_parity.py, every class's
probability, the class names and the token ids transformers' tokenizer gave. tests/hf_parity.rs
checks that tweetlab reads each directory to the same ids and probabilities. The tokenizers are
trained on sample-data/train.csv: byte-level BPE (RoBERTa), Unigram (XLM-R), WordPiece
(DistilBERT); the tokenizers' trainers are not fully deterministic, so running it again makes
new fixtures (the test then checks those). Needs torch, transformers and tokenizers (not part
of CI)."""
import csv, json, os, sys

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders, trainers
from transformers import (DistilBertConfig, DistilBertForSequenceClassification, MPNetConfig,
                          MPNetForSequenceClassification, PreTrainedTokenizerFast, RobertaConfig,
                          RobertaForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification)
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
with open(os.path.join(ROOT, "sample-data/train.csv"), newline="", encoding="utf-8") as f:
    CORPUS = [r["text"] for r in csv.DictReader(f)]
# The texts of the BERT fixture (hf_parity.py's), and one longer than the 40-token limit.
with open(os.path.join(HERE, "fixtures/tiny-classifier/transformers_probs.json"), encoding="utf-8") as f:
    TEXTS = json.load(f)["texts"] + [" ".join(CORPUS[:6])]
MAX_LEN = 40
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
             initializer_range=0.3, layer_norm_eps=1e-5)


def roberta_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=700, special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    return tok, dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                     mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def unigram_tokenizer():
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=500, special_tokens=special, unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok, dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                     mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def wordpiece_tokenizer():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=600, special_tokens=special))
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return tok, dict(unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]", cls_token="[CLS]",
                     sep_token="[SEP]")


def mpnet_tokenizer():
    """all-mpnet-base-v2's kind: lower-cased WordPiece with RoBERTa's <s> ... </s>."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=600, special_tokens=special))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    return tok, dict(bos_token="<s>", eos_token="</s>", unk_token="[UNK]", pad_token="<pad>",
                     mask_token="<mask>", cls_token="<s>", sep_token="</s>")


WANTED = sys.argv[1:] or ["roberta", "xlm-roberta", "distilbert", "mpnet"]


def make(name, build, tok, special, labels, tokenizer_class, seed=0, extra=None):
    if name.removeprefix("tiny-") not in WANTED:
        return
    torch.manual_seed(seed)
    model = build()
    with torch.no_grad():
        # Fresh LayerNorms are exactly 1 and 0 and fresh biases 0: make them count too.
        for n, p in model.named_parameters():
            if n.endswith("bias") or "norm" in n.lower():
                p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    out = os.path.join(HERE, "fixtures", name)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=MAX_LEN, **special)
    fast.save_pretrained(out)
    cfg_path = os.path.join(out, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["tokenizer_class"] = tokenizer_class
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    enc = fast(TEXTS, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.inference_mode():
        kwargs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        probs = torch.softmax(model(**kwargs).logits, -1).tolist()
    ids = [[i for i, m in zip(row, mask) if m] for row, mask in
           zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist())]
    with open(os.path.join(out, "transformers_probs.json"), "w") as f:
        json.dump({"texts": TEXTS, "max_len": MAX_LEN, "labels": labels, "input_ids": ids,
                   "probabilities": probs, **(extra or {})}, f, indent=1, ensure_ascii=False)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"probabilities of class 0 {min(p[0] for p in probs):.3f}..{max(p[0] for p in probs):.3f}")


def id2label(labels):
    return dict(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})


binary = ["not_disaster", "disaster"]
tok, special = roberta_tokenizer()
make("tiny-roberta", lambda: RobertaForSequenceClassification(RobertaConfig(
    vocab_size=tok.get_vocab_size(), max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, **SMALL, **id2label(binary))),
    tok, special, binary, "RobertaTokenizer")

three = ["request", "report", "other"]
tok, special = unigram_tokenizer()
make("tiny-xlm-roberta", lambda: XLMRobertaForSequenceClassification(XLMRobertaConfig(
    vocab_size=tok.get_vocab_size(), max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, **SMALL, **id2label(three))),
    tok, special, three, "XLMRobertaTokenizer", seed=1)

tok, special = wordpiece_tokenizer()
make("tiny-distilbert", lambda: DistilBertForSequenceClassification(DistilBertConfig(
    vocab_size=tok.get_vocab_size(), max_position_embeddings=MAX_LEN, dim=32, n_layers=2,
    n_heads=2, hidden_dim=64, activation="gelu", dropout=0.1, attention_dropout=0.1,
    seq_classif_dropout=0.2, initializer_range=0.3, pad_token_id=0, **id2label(binary))),
    tok, special, binary, "DistilBertTokenizer")

# MPNet's relative position buckets for every key - query distance of lengths 1 to 512, as
# transformers computes them (32 buckets, max distance 128).
rel = torch.arange(-511, 512)
buckets = MPNetEncoder.relative_position_bucket(rel, num_buckets=32, max_distance=128).tolist()
tok, special = mpnet_tokenizer()
make("tiny-mpnet", lambda: MPNetForSequenceClassification(MPNetConfig(
    vocab_size=tok.get_vocab_size(), max_position_embeddings=MAX_LEN + 2, pad_token_id=1,
    bos_token_id=0, eos_token_id=2, relative_attention_num_buckets=32, **SMALL,
    **id2label(binary))),
    tok, special, binary, "MPNetTokenizer", seed=2,
    extra={"relative_buckets": {"from": -511, "buckets": buckets}})
