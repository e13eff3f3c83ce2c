"""Classify texts with a model folder written by `cargo xtask export`, in plain numpy (no
deep-learning framework): a reference forward pass of the embedding, the LSTM, GRU or RNN
layers as torch computes them, and the dense head.

    python numpy_predict.py MODEL_DIR --input texts.jsonl --output verdicts.jsonl [--ids]
"""

import argparse

import numpy as np

from imdb_export import ExportedModel, read_texts, write_verdicts


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def run_direction(model, cell, x, layer, reverse):
    """One direction of one layer over `x` [steps, features]: every step's state, in order."""
    suffix = f"l{layer}" + ("_reverse" if reverse else "")
    t = model.tensors
    w_ih, w_hh = t[f"rnn.weight_ih_{suffix}"].astype(np.float64), t[f"rnn.weight_hh_{suffix}"].astype(np.float64)
    b_ih, b_hh = t[f"rnn.bias_ih_{suffix}"].astype(np.float64), t[f"rnn.bias_hh_{suffix}"].astype(np.float64)
    hidden = w_hh.shape[1]
    h, c = np.zeros(hidden), np.zeros(hidden)
    out = np.zeros((len(x), hidden))
    order = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for step in order:
        gi = w_ih @ x[step] + b_ih
        gh = w_hh @ h + b_hh
        if cell == "lstm":
            i, f, g, o = np.split(gi + gh, 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        elif cell == "gru":
            ir, iz, inn = np.split(gi, 3)
            hr, hz, hn = np.split(gh, 3)
            r, z = sigmoid(ir + hr), sigmoid(iz + hz)
            n = np.tanh(inn + r * hn)
            h = (1.0 - z) * n + z * h
        else:
            h = np.tanh(gi + gh)
        out[step] = h
    return out, h


def network_logits(model, ids):
    """The network's logits of one text's ids."""
    cfg = model.config
    steps = model.steps(ids)
    x = model.tensors["embedding.weight"].astype(np.float64)[steps]
    directions = 2 if cfg["bidirectional"] else 1
    finals = []
    for layer in range(cfg["num_layers"]):
        outs, finals = [], []
        for d in range(directions):
            out, last = run_direction(model, cfg["architecture"], x, layer, d == 1)
            outs.append(out)
            finals.append(last)
        x = np.concatenate(outs, axis=1)
    if cfg["readout"] == "last":
        features = np.concatenate(finals)
    elif cfg["readout"] == "max":
        features = x.max(axis=0)
    else:
        features = x.mean(axis=0)
    head = model.tensors["head.weight"].astype(np.float64)
    return head @ features + model.tensors["head.bias"].astype(np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--ids", action="store_true", help="also write each text's ids")
    args = parser.parse_args()
    model = ExportedModel(args.model)
    texts = read_texts(args.input)
    all_ids = [model.ids(t) for t in texts]
    probabilities = [model.probabilities(model.verdict_logits(network_logits(model, ids), ids))
                     for ids in all_ids]
    write_verdicts(args.output, model, texts, probabilities, all_ids if args.ids else None)


if __name__ == "__main__":
    main()
