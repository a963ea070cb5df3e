#!/usr/bin/env python3
"""Writes the Hugging Face reference fixtures that the C++ parity tests compare against.

Run on a machine with transformers 5.17.0 and torch (the GPU box); it runs on the CPU in fp32, so
no TF32 or GPU nondeterminism enters the references. For each case it builds a small
xLSTMForCausalLM with randomised weights (so the exponential gates are exercised, see
docs/xlstm-model.md §7 G12 and §9), writes it with `save_pretrained` (the format the server
loads), and records fp32 outputs computed from exactly the weights that were written:

  <out>/<case>/config.json, model.safetensors (or shards + index), generation_config.json
  <out>/<case>/reference.safetensors   float32 logits:
      logits_long  [S_long, vocab]   one forward over a >= 300 token prompt (HF chunkwise path)
      logits_short [S_short, vocab]  one forward over a < 64 token prompt (HF step path)
      logits_steps [n_steps, vocab]  prefill of the first P tokens, then one token per call
  <out>/<case>/reference.json         ids, the greedy generate() output, score log-probs

Usage: python3 tools/make_reference.py --out tests/data/hf
"""

import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import xLSTMConfig, xLSTMForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")

NATIVE_KERNELS = dict(
    chunkwise_kernel="chunkwise--native_autograd",
    sequence_kernel="native_sequence__native",
    step_kernel="native",
    mode="inference",
)

# name -> (config overrides, storage dtype, extra save options)
CASES = {
    # Default ratios (qk 0.5, v 1.0, caps 15/30, eps 1e-6), float32 storage.
    "default": (dict(), torch.float32, dict()),
    # use_bias=True: every linear and norm but out_norm gets a bias. bfloat16 storage.
    "bias": (dict(use_bias=True), torch.bfloat16, dict()),
    # qk_dim_factor 1.0 with v_dim_factor 0.5 (DHQK > DHV). float16 storage.
    "qk1_v05": (dict(qk_dim_factor=1.0, v_dim_factor=0.5), torch.float16, dict()),
    # Non-default soft caps, norm_eps and eps, 4 heads, 3 blocks, smaller chunk; sharded files.
    "softcaps_sharded": (
        dict(gate_soft_cap=6.0, output_logit_soft_cap=9.0, norm_eps=1e-3, eps=1e-4,
             num_heads=4, num_hidden_layers=3, chunk_size=32, ffn_proj_factor=1.5),
        torch.bfloat16,
        dict(max_shard_size="200KB"),
    ),
    # weight_mode="fused": HF 5.17 cannot construct fused models (§7 G3), so the case is written
    # by concatenating a single-mode model's weights; its references come from that model.
    "fused": (dict(), torch.bfloat16, dict(fused=True)),
}

BASE = dict(vocab_size=256, hidden_size=128, num_hidden_layers=2, num_heads=2, chunk_size=64)


def randomise(model, generator):
    """§9 recipe: W ~ N(0, 1/fan_in), embeddings N(0,1), lm_head x6, gate weights x3,
    igate bias N(-1, 2), fgate bias N(2, 2), norm weights 1 + 0.2 N(0,1), other biases N(0, 0.1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            def normal(mean, std):
                return torch.randn(p.shape, generator=generator) * std + mean
            if name.endswith("embeddings.weight"):
                p.copy_(normal(0.0, 1.0))
            elif "norm" in name and name.endswith(".weight"):
                p.copy_(normal(1.0, 0.2))
            elif "igate" in name and name.endswith(".bias"):
                p.copy_(normal(-1.0, 2.0))
            elif "fgate" in name and name.endswith(".bias"):
                p.copy_(normal(2.0, 2.0))
            elif name.endswith(".bias"):
                p.copy_(normal(0.0, 0.1))
            elif p.ndim == 2:
                w = normal(0.0, 1.0 / p.shape[1] ** 0.5)
                if name == "lm_head.weight":
                    w *= 6.0
                if "gate_preact" in name:
                    w *= 3.0
                p.copy_(w)
            else:
                raise ValueError(f"unhandled parameter {name}")


def fused_state_dict(model, cfg):
    """single -> fused names by row concatenation (docs §5)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {}
    for i in range(cfg.num_blocks):
        p = f"backbone.blocks.{i}."
        m = p + "mlstm_layer."
        out[m + "qkv_opreact.weight"] = torch.cat(
            [sd.pop(m + n + ".weight") for n in ("q", "k", "v", "ogate_preact")], 0)
        out[m + "ifgate_preact.weight"] = torch.cat(
            [sd.pop(m + "igate_preact.weight"), sd.pop(m + "fgate_preact.weight")], 0)
        out[m + "ifgate_preact.bias"] = torch.cat(
            [sd.pop(m + "igate_preact.bias"), sd.pop(m + "fgate_preact.bias")], 0)
        f = p + "ffn."
        out[f + "proj_up_gate_z.weight"] = torch.cat(
            [sd.pop(f + "proj_up_gate.weight"), sd.pop(f + "proj_up.weight")], 0)
    out.update(sd)
    return {k: v.contiguous() for k, v in out.items()}


def make_case(name, overrides, dtype, opts, out_dir, seed):
    cfg = xLSTMConfig(**{**BASE, **NATIVE_KERNELS, **overrides})
    model = xLSTMForCausalLM(cfg).float().eval()
    gen = torch.Generator().manual_seed(seed)
    randomise(model, gen)
    # Round to the storage dtype first, so the fp32 reference uses exactly the stored weights.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))

    case_dir = os.path.join(out_dir, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    if opts.get("fused"):
        os.makedirs(case_dir)
        sd = {k: v.to(dtype) for k, v in fused_state_dict(model, cfg).items()}
        save_file(sd, os.path.join(case_dir, "model.safetensors"), metadata={"format": "pt"})
        fused_cfg = xLSTMConfig(**{**BASE, **NATIVE_KERNELS, **overrides, "weight_mode": "fused"})
        fused_cfg.save_pretrained(case_dir)
    else:
        save_kwargs = {}
        if "max_shard_size" in opts:
            save_kwargs["max_shard_size"] = opts["max_shard_size"]
        model.to(dtype).save_pretrained(case_dir, **save_kwargs)
        model.float()

    vocab = cfg.vocab_size
    ids_long = torch.randint(0, vocab, (1, 300), generator=gen)
    ids_short = torch.randint(0, vocab, (1, 37), generator=gen)
    prefill_len, n_steps = 100, 6
    ids_steps = torch.randint(0, vocab, (1, prefill_len + n_steps), generator=gen)
    prompt = torch.randint(0, vocab, (1, 12), generator=gen)
    context = torch.randint(0, vocab, (1, 20), generator=gen)
    continuation = torch.randint(0, vocab, (1, 9), generator=gen)

    with torch.no_grad():
        logits_long = model(input_ids=ids_long, use_cache=False).logits[0]
        logits_short = model(input_ids=ids_short, use_cache=False).logits[0]
        out = model(input_ids=ids_steps[:, :prefill_len], use_cache=True)
        cache = out.cache_params
        steps = []
        for t in range(n_steps):
            pos = prefill_len + t
            o = model(input_ids=ids_steps[:, pos:pos + 1], cache_params=cache, use_cache=True)
            steps.append(o.logits[0, -1])
        logits_steps = torch.stack(steps)
        # Greedy generate() exactly as a user calls it (stops at the generation config's EOS).
        generated = model.generate(prompt, max_new_tokens=24, do_sample=False)[0, prompt.shape[1]:]
        # Score: log P(continuation[i] | context + continuation[:i]) from HF's log_softmax.
        full = torch.cat([context, continuation], 1)
        logp = torch.log_softmax(model(input_ids=full, use_cache=False).logits[0].double(), -1)
        positions = range(context.shape[1] - 1, full.shape[1] - 1)
        cont = continuation[0].tolist()
        score_logprobs = [logp[p, c].item() for p, c in zip(positions, cont)]
        is_greedy = all(int(logp[p].argmax()) == c for p, c in zip(positions, cont))
        # A continuation that is greedy by construction, so is_greedy=true is covered too.
        greedy_cont = model.generate(context, max_new_tokens=5, do_sample=False)[0, context.shape[1]:]

    save_file(
        {"logits_long": logits_long.contiguous(), "logits_short": logits_short.contiguous(),
         "logits_steps": logits_steps.contiguous()},
        os.path.join(case_dir, "reference.safetensors"))
    meta = {
        "case": name,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "storage_dtype": str(dtype).replace("torch.", ""),
        "seed": seed,
        "ids_long": ids_long[0].tolist(),
        "ids_short": ids_short[0].tolist(),
        "ids_steps": ids_steps[0].tolist(),
        "steps_prefill_len": prefill_len,
        "generate": {"prompt": prompt[0].tolist(), "max_new_tokens": 24,
                     "eos_token_id": model.generation_config.eos_token_id,
                     "ids": generated.tolist()},
        "score": [
            {"context": context[0].tolist(), "continuation": cont,
             "logprobs": score_logprobs, "sum": sum(score_logprobs), "is_greedy": is_greedy},
            {"context": context[0].tolist(), "continuation": greedy_cont.tolist(),
             "is_greedy": True},
        ],
    }
    with open(os.path.join(case_dir, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: generate -> {generated.tolist()}, score sum {sum(score_logprobs):.4f}, "
          f"is_greedy {is_greedy}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/hf")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if transformers.__version__ != "5.17.0":
        print(f"warning: transformers {transformers.__version__}, references are meant for 5.17.0")
    torch.manual_seed(args.seed)
    for i, (name, (overrides, dtype, opts)) in enumerate(CASES.items()):
        make_case(name, overrides, dtype, opts, args.out, args.seed + i)


if __name__ == "__main__":
    main()
