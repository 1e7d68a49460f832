#!/usr/bin/python3
"""Golden data for tests/models/test_opt_golden.cpp.

An independent reference of the OPT forward pass (Hugging Face OPTForCausalLM with
do_layer_norm_before=True, ReLU, tied lm_head), written with numpy in float64. It builds a
tiny model from a fixed seed and writes, into tests/data/opt-tiny/:
  config.json        Hugging Face OPTConfig keys (no "cbtm" section: a plain HF checkpoint)
  model.safetensors  F32 weights under HF names "model.decoder.*", plus lm_head.weight (tied)
  expected.safetensors  tokens_<i> (I64 [T_i]) and logits_<i> (F32 [T_i, vocab])
The safetensors files are written by hand (8-byte little-endian header length, JSON header,
raw little-endian data), since the `safetensors` package is not installed.

Run: /usr/bin/python3 tests/models/golden/make_opt_golden.py   (from the repository root)
"""
import json
import os
import struct

import numpy as np
import torch

VOCAB, D, LAYERS, HEADS, FF, MAXPOS = 50, 16, 2, 2, 32, 16
OFFSET = 2  # OPT's learned positions start at row 2
EPS = 1e-5
SEED = 20240611
SEQUENCES = [
    [2, 17, 5, 33, 48, 9, 9, 21, 0, 44, 3, 12],
    [2, 40, 7, 1, 26, 30, 2],
]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "opt-tiny")


def make_weights():
    """HF-named float32 weights. Biases and LayerNorm parameters are random (not 0/1) so
    that the test sees every one of them used."""
    g = torch.Generator().manual_seed(SEED)

    def normal(*shape, std=0.3, mean=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean).float().numpy()

    w = {}
    p = "model.decoder."
    w[p + "embed_tokens.weight"] = normal(VOCAB, D, std=0.5)
    w[p + "embed_positions.weight"] = normal(MAXPOS + OFFSET, D, std=0.5)
    for i in range(LAYERS):
        q = f"{p}layers.{i}."
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            w[q + f"self_attn.{name}.weight"] = normal(D, D)
            w[q + f"self_attn.{name}.bias"] = normal(D, std=0.1)
        w[q + "self_attn_layer_norm.weight"] = normal(D, std=0.1, mean=1.0)
        w[q + "self_attn_layer_norm.bias"] = normal(D, std=0.1)
        w[q + "fc1.weight"] = normal(FF, D)
        w[q + "fc1.bias"] = normal(FF, std=0.1)
        w[q + "fc2.weight"] = normal(D, FF)
        w[q + "fc2.bias"] = normal(D, std=0.1)
        w[q + "final_layer_norm.weight"] = normal(D, std=0.1, mean=1.0)
        w[q + "final_layer_norm.bias"] = normal(D, std=0.1)
    w[p + "final_layer_norm.weight"] = normal(D, std=0.1, mean=1.0)
    w[p + "final_layer_norm.bias"] = normal(D, std=0.1)
    w["lm_head.weight"] = w[p + "embed_tokens.weight"].copy()  # tied, stored explicitly
    return w


def layer_norm(x, weight, bias):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * weight + bias


def linear(x, w, b):
    return x @ w.T + b


def forward(w, tokens):
    """Logits [T, vocab] for one sequence, in float64, one head at a time."""
    W = {k: v.astype(np.float64) for k, v in w.items()}
    p = "model.decoder."
    T = len(tokens)
    x = W[p + "embed_tokens.weight"][tokens] + W[p + "embed_positions.weight"][np.arange(T) + OFFSET]
    hd = D // HEADS
    for i in range(LAYERS):
        q = f"{p}layers.{i}."
        h = layer_norm(x, W[q + "self_attn_layer_norm.weight"], W[q + "self_attn_layer_norm.bias"])
        Q = linear(h, W[q + "self_attn.q_proj.weight"], W[q + "self_attn.q_proj.bias"]) * hd ** -0.5
        K = linear(h, W[q + "self_attn.k_proj.weight"], W[q + "self_attn.k_proj.bias"])
        V = linear(h, W[q + "self_attn.v_proj.weight"], W[q + "self_attn.v_proj.bias"])
        att = np.zeros((T, D))
        for head in range(HEADS):
            s = slice(head * hd, (head + 1) * hd)
            for t in range(T):  # position t attends to 0..t
                scores = Q[t, s] @ K[: t + 1, s].T
                e = np.exp(scores - scores.max())
                att[t, s] = (e / e.sum()) @ V[: t + 1, s]
        x = x + linear(att, W[q + "self_attn.out_proj.weight"], W[q + "self_attn.out_proj.bias"])
        h = layer_norm(x, W[q + "final_layer_norm.weight"], W[q + "final_layer_norm.bias"])
        h = np.maximum(linear(h, W[q + "fc1.weight"], W[q + "fc1.bias"]), 0.0)
        x = x + linear(h, W[q + "fc2.weight"], W[q + "fc2.bias"])
    x = layer_norm(x, W[p + "final_layer_norm.weight"], W[p + "final_layer_norm.bias"])
    return x @ W["lm_head.weight"].T


DTYPES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad so that the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    w = make_weights()
    config = {
        "model_type": "opt", "architectures": ["OPTForCausalLM"], "vocab_size": VOCAB,
        "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "ffn_dim": FF, "max_position_embeddings": MAXPOS, "word_embed_proj_dim": D,
        "do_layer_norm_before": True, "dropout": 0.1, "attention_dropout": 0.0,
        "activation_dropout": 0.0, "activation_function": "relu", "layerdrop": 0.0,
        "init_std": 0.02, "enable_bias": True, "layer_norm_elementwise_affine": True,
        "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1,
        "torch_dtype": "float32",
    }
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(OUT, "model.safetensors"), w, {"format": "pt"})
    expected = {}
    for i, seq in enumerate(SEQUENCES):
        expected[f"tokens_{i}"] = np.array(seq, dtype=np.int64)
        expected[f"logits_{i}"] = forward(w, np.array(seq)).astype(np.float32)
    write_safetensors(os.path.join(OUT, "expected.safetensors"), expected,
                      {"source": "tests/models/golden/make_opt_golden.py"})
    for i in range(len(SEQUENCES)):
        lg = expected[f"logits_{i}"]
        print(f"sequence {i}: logits {lg.shape}, range [{lg.min():.3f}, {lg.max():.3f}]")


if __name__ == "__main__":
    main()
