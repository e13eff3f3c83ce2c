"""Reading a model folder written by `cargo xtask export`: its settings, its tokenizer, its
weights, and the parts every framework computes the same way (truncation, padding, the
n-gram part of a stacked model, probabilities). Needs numpy, safetensors and tokenizers."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


class ExportedModel:
    """An exported folder: `config`, `tensors` (name -> numpy array) and `tokenizer`."""

    def __init__(self, folder):
        folder = Path(folder)
        self.config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.tensors = load_file(str(folder / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if self.config.get("format") != 1:
            raise ValueError(f"{folder}: config.json format {self.config.get('format')} is not 1")

    def ids(self, text):
        """Every id of `text` (the start id first), before truncation."""
        return self.tokenizer.encode(text).ids

    def kept(self, ids):
        """The ids the network reads: the first or last `maxlen`."""
        maxlen = self.config["maxlen"]
        if len(ids) <= maxlen:
            return list(ids)
        return list(ids[-maxlen:]) if self.config["truncating"] == "pre" else list(ids[:maxlen])

    def steps(self, ids):
        """The ids the recurrent layers run on: the kept ids, padded with 0 to `maxlen` on the
        `padding` side for a model that reads padding (`mask_padding` false)."""
        kept = self.kept(ids)
        if self.config["mask_padding"]:
            return kept
        pad = [0] * (self.config["maxlen"] - len(kept))
        return pad + kept if self.config["padding"] == "pre" else kept + pad

    def ngram_logit(self, ids):
        """A stacked model's n-gram log-odds of every id of a text."""
        stack = self.config["stack"]
        bits = np.uint64(stack["hash_bits"])
        ids = np.asarray(ids, dtype=np.uint64)
        buckets = []
        for n in range(1, stack["max_n"] + 1):
            if len(ids) < n:
                break
            h = np.full(len(ids) - n + 1, FNV_OFFSET, dtype=np.uint64)
            for k in range(n):
                word = ids[k:len(ids) - n + 1 + k]
                for byte in range(4):
                    h = (h ^ ((word >> np.uint64(8 * byte)) & np.uint64(0xFF))) * FNV_PRIME
            buckets.append(h >> (np.uint64(64) - bits))
        weights = self.tensors["ngram.weight"].astype(np.float64)
        distinct = np.unique(np.concatenate(buckets)) if buckets else np.zeros(0, np.uint64)
        return float(self.tensors["ngram.bias"][0]) + float(weights[distinct.astype(np.int64)].sum())

    def verdict_logits(self, network_logits, ids):
        """The model's logits: the network's, stacked with the n-gram part if it has one."""
        stack = self.config.get("stack")
        if stack is None:
            return np.asarray(network_logits, dtype=np.float64)
        z = float(network_logits[0])
        return np.array([stack["network_weight"] * z
                         + stack["ngram_weight"] * self.ngram_logit(ids) + stack["bias"]])

    def probabilities(self, logits):
        """Every class's probability, in the order of `classes`."""
        logits = np.asarray(logits, dtype=np.float64)
        if len(logits) == 1:
            p = 1.0 / (1.0 + np.exp(-logits[0]))
            return np.array([1.0 - p, p])
        e = np.exp(logits - logits.max())
        return e / e.sum()


def read_texts(path):
    """Texts from a .txt (one per line) or .jsonl (a `text` key) file."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in lines if line.strip()]
    return lines


def write_verdicts(path, model, texts, probabilities, ids=None):
    """One JSON object per text: label, probability, every class's probability (and the ids
    when given), as `cargo xtask predict --output FILE.jsonl` writes them."""
    classes = model.config["classes"]
    with open(path, "w", encoding="utf-8") as out:
        for i, p in enumerate(probabilities):
            best = int(np.argmax(p))
            row = {"id": str(i + 1), "label": classes[best], "probability": float(p[best]),
                   "probabilities": {c: float(v) for c, v in zip(classes, p)}}
            if ids is not None:
                row["ids"] = ids[i]
            out.write(json.dumps(row) + "\n")
