#!/usr/bin/env python3
"""Where the bf16-weights mode's error comes from, on the HF fixtures (tests/data/hf).

Emulates the CUDA engine's bf16 mode in float32 PyTorch on HF's own model: every Linear's weight
and the embedding table rounded to bf16, every Linear's input rounded to bf16 (our GEMM operands),
everything else fp32. Variants switch one rounding off at a time to see which one moves the
greedy tokens, and HF's own bf16 model (model.to(bfloat16)) is listed for comparison. Each is
compared with the fp32 reference outputs stored in the fixture (reference.safetensors/json).

Run where transformers 5.17.0 is installed (the GPU box); CPU only, a minute or so:
  python3 tools/gpu/bf16_error_study.py [--fixtures tests/data/hf] [--json OUT.json]
"""

import argparse
import json
import os

import torch
from safetensors.torch import load_file
from transformers import xLSTMConfig, xLSTMForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False
torch.set_float32_matmul_precision("highest")

NATIVE = dict(chunkwise_kernel="chunkwise--native_autograd", sequence_kernel="native_sequence__native",
              step_kernel="native", mode="inference")
GATES = ("igate_preact", "fgate_preact")


def bf16(t):
    return t.to(torch.bfloat16).to(torch.float32)


def load_model(case_dir):
    cfg = xLSTMConfig.from_pretrained(case_dir)
    for k, v in NATIVE.items():
        setattr(cfg, k, v)
    if getattr(cfg, "weight_mode", "single") == "fused":
        # HF cannot build fused models; split the fused tensors back into single-mode names.
        cfg.weight_mode = "single"
        model = xLSTMForCausalLM(cfg).float().eval()
        files = [f for f in os.listdir(case_dir) if f.startswith("model") and f.endswith(".safetensors")]
        sd = {}
        for f in files:
            sd.update({k: v.float() for k, v in load_file(os.path.join(case_dir, f)).items()})
        out = {}
        for k, t in sd.items():
            if k.endswith("qkv_opreact.weight"):
                p = k[: -len("qkv_opreact.weight")]
                m = model.get_submodule(p.rstrip("."))
                sizes = [m.q.weight.shape[0], m.k.weight.shape[0], m.v.weight.shape[0],
                         m.ogate_preact.weight.shape[0]]
                for name, part in zip(("q", "k", "v", "ogate_preact"), torch.split(t, sizes, 0)):
                    out[p + name + ".weight"] = part
            elif k.endswith("ifgate_preact.weight") or k.endswith("ifgate_preact.bias"):
                kind = k.rsplit(".", 1)[1]
                p = k[: -len("ifgate_preact." + kind)]
                i, f = torch.chunk(t, 2, 0)
                out[p + "igate_preact." + kind] = i
                out[p + "fgate_preact." + kind] = f
            elif k.endswith("proj_up_gate_z.weight"):
                p = k[: -len("proj_up_gate_z.weight")]
                g, u = torch.chunk(t, 2, 0)
                out[p + "proj_up_gate.weight"] = g
                out[p + "proj_up.weight"] = u
            else:
                out[k] = t
        missing, unexpected = model.load_state_dict(out, strict=False)
        assert not unexpected, unexpected
        assert all("lm_head" in m for m in missing), missing  # tied or absent
        return model
    return xLSTMForCausalLM.from_pretrained(case_dir, config=cfg, torch_dtype=torch.float32).eval()


def emulate(model, round_inputs=True, gates_fp32=False, head_fp32=False, weights=True):
    """Rounds weights and Linear inputs in place (on a copy); returns the hook handles."""
    handles = []
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Embedding) and weights:
                mod.weight.copy_(bf16(mod.weight))
            if not isinstance(mod, torch.nn.Linear):
                continue
            exact = (gates_fp32 and name.split(".")[-1] in GATES) or (head_fp32 and name == "lm_head")
            if exact:
                continue
            if weights:
                mod.weight.copy_(bf16(mod.weight))
            if round_inputs:
                handles.append(mod.register_forward_pre_hook(lambda m, args: (bf16(args[0]),) + args[1:]))
    return handles


def measure(model, ref, meta, device="cpu"):
    def ids(key):
        return torch.tensor([meta[key]], device=device)

    with torch.no_grad():
        long = model(input_ids=ids("ids_long"), use_cache=False).logits[0].float().cpu()
        short = model(input_ids=ids("ids_short"), use_cache=False).logits[0].float().cpu()
        prompt = torch.tensor([meta["generate"]["prompt"]], device=device)
        gen = model.generate(prompt, max_new_tokens=meta["generate"]["max_new_tokens"],
                             do_sample=False)[0, prompt.shape[1]:].tolist()
    want = meta["generate"]["ids"]
    agree = next((i for i, (a, b) in enumerate(zip(gen, want)) if a != b), min(len(gen), len(want)))

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    return dict(long_rel=rel(long, ref["logits_long"]), short_rel=rel(short, ref["logits_short"]),
                greedy_equal_prefix=agree, greedy_len=len(want))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default="tests/data/hf")
    ap.add_argument("--json")
    args = ap.parse_args()
    variants = {
        "ours_bf16 (weights+inputs)": dict(),
        "inputs exact (weights only)": dict(round_inputs=False),
        "gates fp32": dict(gates_fp32=True),
        "lm_head fp32": dict(head_fp32=True),
        "gates+lm_head fp32": dict(gates_fp32=True, head_fp32=True),
    }
    results = {}
    for case in sorted(os.listdir(args.fixtures)):
        d = os.path.join(args.fixtures, case)
        if not os.path.isfile(os.path.join(d, "reference.json")):
            continue
        meta = json.load(open(os.path.join(d, "reference.json")))
        ref = {k: v.float() for k, v in load_file(os.path.join(d, "reference.safetensors")).items()}
        row = {}
        base = load_model(d)
        row["fp32 (sanity)"] = measure(base, ref, meta)
        for vname, opts in variants.items():
            m = load_model(d)
            emulate(m, **opts)
            row[vname] = measure(m, ref, meta)
        if torch.cuda.is_available():
            # HF 5.17's native chunkwise kernel mixes dtypes in bf16 for some prompt lengths.
            try:
                hf = load_model(d).to("cuda", torch.bfloat16)
                row["HF bf16 (cuda)"] = measure(hf, ref, meta, device="cuda")
            except RuntimeError as e:
                print(f"{case}: HF bf16 failed: {str(e).splitlines()[0]}")
        results[case] = row
        for vname, r in row.items():
            print(f"{case:18s} {vname:30s} greedy {r['greedy_equal_prefix']:2d}/{r['greedy_len']}"
                  f"  long {r['long_rel']:.3g}  short {r['short_rel']:.3g}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
