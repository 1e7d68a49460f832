#!/usr/bin/python3
"""The peer of train_bench: the same OPT-style model, batch and recipe trained from Python with
Debian's python3-torch (the same LibTorch as cbtm links), written the way a PyTorch user would:
nn.Linear / nn.LayerNorm modules, pre-LayerNorm decoder layers with learned positions (OPT's
offset of 2), ReLU feed-forward, tied input/output embeddings, dropout 0.1, Adam (0.9, 0.95,
eps 1e-6), gradient clipping at 1.0, linear decay, bf16 autocast on CPU (torch.autocast) or fp32.

Prints one JSON line: the median tokens/s over steps 4..N (the first three are warm-up).

    /usr/bin/python3 bench/peers/torch_train.py --d-model 512 --layers 8 --heads 8 --d-ff 2048 \
        --vocab 8192 --batch 8 --seq 512 --steps 12 --threads 2 --precision bf16
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d, h, p):
        super().__init__()
        self.h, self.hd, self.p = h, d // h, p
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        B, T, D = x.shape
        heads = lambda t: t.view(B, T, self.h, self.hd).transpose(1, 2)
        q = heads(self.q_proj(x)) * (1.0 / math.sqrt(self.hd))
        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        scores = q @ k.transpose(-2, -1)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), -1)
        probs = F.dropout(probs, self.p, self.training)
        return self.out_proj((probs @ v).transpose(1, 2).reshape(B, T, D))


class Layer(nn.Module):
    def __init__(self, d, h, ff, p):
        super().__init__()
        self.self_attn = Attention(d, h, 0.0)
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.p = p

    def forward(self, x):
        x = x + F.dropout(self.self_attn(self.self_attn_layer_norm(x)), self.p, self.training)
        h = self.fc2(F.relu(self.fc1(self.final_layer_norm(x))))
        return x + F.dropout(h, self.p, self.training)


class OPT(nn.Module):
    def __init__(self, vocab, d, layers, h, ff, max_pos, p=0.1):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.embed_positions = nn.Embedding(max_pos + 2, d)
        self.layers = nn.ModuleList(Layer(d, h, ff, p) for _ in range(layers))
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.embed_tokens(tokens) + self.embed_positions(torch.arange(2, T + 2, device=tokens.device))
        for layer in self.layers:
            x = layer(x)
        return F.linear(self.final_layer_norm(x), self.embed_tokens.weight)


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("d-model", 512), ("layers", 8), ("heads", 8), ("d-ff", 2048), ("vocab", 8192),
                          ("batch", 8), ("seq", 512), ("steps", 12), ("threads", 2)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = OPT(a.vocab, a.d_model, a.layers, a.heads, a.d_ff, a.seq)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / a.steps)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(4, a.vocab, (a.steps, a.batch, a.seq + 1), generator=g).to(dev)
    model.train()
    rates = []
    for step in range(a.steps):
        t0 = time.perf_counter()
        x = data[step]
        if a.device == "cuda":
            torch.cuda.synchronize()
        inputs, targets = x[:, :-1], x[:, 1:].reshape(-1)
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if a.device == "cuda":
            torch.cuda.synchronize()
        else:
            loss.item()
        rates.append(a.batch * a.seq / (time.perf_counter() - t0))
    print(json.dumps({"torch": torch.__version__, "precision": a.precision, "threads": a.threads,
                      "tokens_per_s_median": statistics.median(rates[3:]), "loss": loss.item()}))


if __name__ == "__main__":
    main()
