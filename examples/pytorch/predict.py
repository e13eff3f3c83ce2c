"""Classify texts with a model folder written by `cargo xtask export`, in PyTorch: the
weights load into `torch.nn.Embedding`, `torch.nn.LSTM` / `GRU` / `RNN` and `torch.nn.Linear`
by name, the tokenizer is the folder's `tokenizer.json` (Hugging Face `tokenizers`), and a
stacked model's n-gram part is a few lines of numpy (`imdb_export.py`).

    pip install torch safetensors tokenizers numpy
    python predict.py MODEL_DIR "A moving, beautifully shot film." "Dull."
    python predict.py MODEL_DIR --input texts.jsonl --output verdicts.jsonl
"""

import argparse
import json

import numpy as np
import torch
from torch import nn
from safetensors.torch import load_file

from imdb_export import ExportedModel, read_texts, write_verdicts


class Classifier(nn.Module):
    """Embedding -> recurrent layers -> Linear, as config.json describes it."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg["num_words"], cfg["embed_dim"])
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg["architecture"]]
        self.rnn = layer(cfg["embed_dim"], cfg["units"], num_layers=cfg["num_layers"],
                         bidirectional=cfg["bidirectional"], batch_first=True)
        features = cfg["units"] * (2 if cfg["bidirectional"] else 1)
        self.head = nn.Linear(features, cfg["outputs"])

    def forward(self, steps):
        """Logits of a batch of id sequences (lists, each already truncated or padded)."""
        lengths = torch.tensor([len(s) for s in steps])
        padded = nn.utils.rnn.pad_sequence([torch.tensor(s) for s in steps], batch_first=True)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(padded), lengths,
                                                   batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        if self.cfg["readout"] == "last":
            h = hidden[0] if isinstance(hidden, tuple) else hidden
            directions = 2 if self.cfg["bidirectional"] else 1
            features = torch.cat([h[-directions + d] for d in range(directions)], dim=1)
        else:
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
            real = (torch.arange(out.shape[1])[None, :] < lengths[:, None]).unsqueeze(2)
            if self.cfg["readout"] == "max":
                features = out.masked_fill(~real, float("-inf")).max(dim=1).values
            else:
                features = (out * real).sum(dim=1) / lengths[:, None]
        return self.head(features)


def load(folder):
    """The exported folder and its network, weights loaded."""
    exported = ExportedModel(folder)
    if exported.config["architecture"] not in ("lstm", "gru", "rnn"):
        raise ValueError(f"architecture {exported.config['architecture']} is not recurrent")
    network = Classifier(exported.config)
    state = {k: v for k, v in load_file(f"{folder}/model.safetensors").items()
             if not k.startswith("ngram.")}
    network.load_state_dict(state)
    network.eval()
    return exported, network


def classify(exported, network, texts, batch=256):
    """Every class's probability of each text."""
    probabilities = []
    for start in range(0, len(texts), batch):
        ids = [exported.ids(t) for t in texts[start:start + batch]]
        with torch.no_grad():
            logits = network([exported.steps(i) for i in ids]).double().numpy()
        for row, text_ids in zip(logits, ids):
            probabilities.append(exported.probabilities(exported.verdict_logits(row, text_ids)))
    return probabilities


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("text", nargs="*")
    parser.add_argument("--input")
    parser.add_argument("--output")
    args = parser.parse_args()
    exported, network = load(args.model)
    texts = read_texts(args.input) if args.input else args.text
    probabilities = classify(exported, network, texts)
    if args.output:
        write_verdicts(args.output, exported, texts, probabilities)
        return
    classes = exported.config["classes"]
    for text, p in zip(texts, probabilities):
        best = int(np.argmax(p))
        print(json.dumps({"label": classes[best], "probability": float(p[best]),
                          "text": text[:70]}))


if __name__ == "__main__":
    main()
