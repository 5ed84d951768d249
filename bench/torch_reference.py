#!/usr/bin/env python3
"""torch_reference.py — the PyTorch side of `circd bench --device cuda`: a plain PyTorch Llama (RMSNorm, RoPE in
Hugging Face's rotate-half convention, grouped-query attention, SwiGLU, untied lm_head) of the same config and
initialisation as circd's bench (N(0, 0.02) matrices, o_proj / down_proj scaled by 1/sqrt(2 L), norms 1), trained
with AdamW (lr 1e-4, betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on matrices, global-norm clip 1.0) on random
tokens, in fp32 (TF32 off, as circd) and with bf16 autocast. Prints tokens/s per precision in circd's layout and a
CIRCD_TORCH_TOKENS_PER_S=FP32,BF16 line to hand to `circd bench --device cuda`.

Needs only torch (the GPU machine's image has it); circd's tests only byte-compile this file.
    python3 bench/torch_reference.py --d 1024 --layers 16 --heads 16 --kv-heads 4 --d-ff 2816 --vocab 32000 \\
        --seq 512 --batch 16
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = a.heads, a.kv_heads, a.d // a.heads
        self.attention = a.attention
        self.input_layernorm = RMSNorm(a.d, a.eps)
        self.q_proj = nn.Linear(a.d, a.heads * self.hd, bias=False)
        self.k_proj = nn.Linear(a.d, a.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(a.d, a.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(a.heads * self.hd, a.d, bias=False)
        self.post_attention_layernorm = RMSNorm(a.d, a.eps)
        self.gate_proj = nn.Linear(a.d, a.d_ff, bias=False)
        self.up_proj = nn.Linear(a.d, a.d_ff, bias=False)
        self.down_proj = nn.Linear(a.d_ff, a.d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = self.n_heads // self.n_kv
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        if self.attention == "sdpa":
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # the pattern materialised, as circd computes it (hooks need it)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            pattern = torch.softmax(scores.masked_fill(mask, float("-inf")).float(), dim=-1).to(q.dtype)
            z = pattern @ v
        x = x + self.o_proj(z.transpose(1, 2).reshape(B, T, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.d)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.d, a.eps)
        self.lm_head = nn.Linear(a.d, a.vocab, bias=False)
        hd = a.d // a.heads
        inv_freq = 1.0 / (a.rope_theta ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(a.seq).float(), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos()[None, None], persistent=False)
        self.register_buffer("sin", angles.sin()[None, None], persistent=False)
        self.register_buffer("mask", torch.ones(a.seq, a.seq, dtype=torch.bool).triu(1), persistent=False)
        for name, p in self.named_parameters():  # circd's model_init_random
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * a.layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin, mask = self.cos[..., :T, :].to(x.dtype), self.sin[..., :T, :].to(x.dtype), self.mask[:T, :T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)


def measure(model, opt, tokens, targets, precision, seconds, device):
    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):  # warm-up: allocator, cuBLAS heuristics
        step()
    sync()
    start, steps = time.perf_counter(), 0
    while True:
        loss = step()
        steps += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            break
    if not math.isfinite(loss.item()):
        raise SystemExit(f"torch_reference: training loss {loss.item()} in {precision}")
    return steps * tokens.numel() / elapsed, elapsed / steps * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=2816)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--seconds", type=float, default=3.0, help="minimum measuring time per precision (default 3)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--attention", choices=["sdpa", "naive"], default="sdpa",
                   help="sdpa: torch's fused causal attention (default); naive: the pattern materialised, as circd")
    a = p.parse_args()
    device = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # circd's fp32 is plain fp32
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1234)
    model = Llama(a).to(device)
    decay = [q for q in model.parameters() if q.dim() == 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(99)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(device)
    targets = torch.cat((tokens[:, 1:], torch.full((a.batch, 1), -1, device=device)), dim=1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    params = sum(q.numel() for q in model.parameters())
    print(f"device {a.device} ({name}), torch {torch.__version__}, attention {a.attention}: d {a.d}, {a.layers} layers, "
          f"{a.heads} heads / {a.kv_heads} kv, d_ff {a.d_ff}, vocab {a.vocab}, seq {a.seq}, batch {a.batch} "
          f"({params * 1e-6:.3g} M parameters)")
    print(f"{'':5s} {'train tok/s':>11s} {'step ms':>9s}")
    rates = []
    for precision in ("fp32", "bf16") if device.type == "cuda" else ("fp32",):
        tok_s, step_ms = measure(model, opt, tokens, targets, precision, a.seconds, device)
        rates.append(tok_s)
        print(f"{precision:5s} {tok_s:11.0f} {step_ms:9.2f}", flush=True)
    print("CIRCD_TORCH_TOKENS_PER_S=" + ",".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    main()
