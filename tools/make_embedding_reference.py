#!/usr/bin/env python3
"""Writes Hugging Face references for embeddings: xLSTMModel's last_hidden_state (after the final
norm) on the prompts of every fixture in tests/data/hf, for the Embed parity tests.

Run where transformers 5.17 and torch are installed (the GPU box); it runs on the CPU in fp32
with HF's native kernels, like tools/make_reference.py. For each case it loads the checkpoint
the C++ side loads (a fused one is split back into HF's single-mode tensors, since HF 5.17 cannot
build fused models) and writes:

  <dir>/<case>/embedding_reference.safetensors   float32
      hidden_long  [300, D]   backbone(ids_long).last_hidden_state   (HF chunkwise path)
      hidden_short [37, D]    backbone(ids_short).last_hidden_state  (HF step path)
  <dir>/<case>/embedding_reference.json          versions, and which prompts of reference.json

Usage: python3 tools/make_embedding_reference.py --dir tests/data/hf
"""

import argparse
import json
import os

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import xLSTMConfig, xLSTMForCausalLM

torch.set_float32_matmul_precision("highest")

NATIVE_KERNELS = dict(
    chunkwise_kernel="chunkwise--native_autograd",
    sequence_kernel="native_sequence__native",
    step_kernel="native",
    mode="inference",
)


def load_checkpoint_tensors(case_dir):
    index = os.path.join(case_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(load_file(os.path.join(case_dir, f)))
    return tensors


def unfused(sd, cfg):
    """fused -> single names, splitting rows (the inverse of make_reference.fused_state_dict)."""
    qk = int(cfg.hidden_size * cfg.qk_dim_factor)
    v = int(cfg.hidden_size * cfg.v_dim_factor)
    nh = cfg.num_heads
    out = dict(sd)
    for i in range(cfg.num_blocks):
        m = f"backbone.blocks.{i}.mlstm_layer."
        w = out.pop(m + "qkv_opreact.weight")
        q, k, vv, o = torch.split(w, [qk, qk, v, v], 0)
        out[m + "q.weight"], out[m + "k.weight"] = q, k
        out[m + "v.weight"], out[m + "ogate_preact.weight"] = vv, o
        ig, fg = torch.split(out.pop(m + "ifgate_preact.weight"), [nh, nh], 0)
        out[m + "igate_preact.weight"], out[m + "fgate_preact.weight"] = ig, fg
        ib, fb = torch.split(out.pop(m + "ifgate_preact.bias"), [nh, nh], 0)
        out[m + "igate_preact.bias"], out[m + "fgate_preact.bias"] = ib, fb
        f = f"backbone.blocks.{i}.ffn."
        w = out.pop(f + "proj_up_gate_z.weight")
        half = w.shape[0] // 2
        out[f + "proj_up_gate.weight"], out[f + "proj_up.weight"] = w[:half], w[half:]
    return out


def load_model(case_dir):
    raw = json.load(open(os.path.join(case_dir, "config.json")))
    if raw.get("weight_mode", "single") != "fused":
        model = xLSTMForCausalLM.from_pretrained(case_dir, **NATIVE_KERNELS)
        return model.float().eval()
    raw = {k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")}
    raw["weight_mode"] = "single"
    cfg = xLSTMConfig(**{**raw, **NATIVE_KERNELS})
    model = xLSTMForCausalLM(cfg).float().eval()
    sd = {k: t.to(torch.float32) for k, t in unfused(load_checkpoint_tensors(case_dir), cfg).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # lm_head may be absent from a checkpoint (HF would then keep its init); the hidden states do
    # not use it.
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="tests/data/hf")
    args = ap.parse_args()
    for case in sorted(os.listdir(args.dir)):
        case_dir = os.path.join(args.dir, case)
        ref_path = os.path.join(case_dir, "reference.json")
        if not os.path.exists(ref_path):
            continue
        ref = json.load(open(ref_path))
        model = load_model(case_dir)
        out = {}
        with torch.no_grad():
            for key in ("long", "short"):
                ids = torch.tensor([ref["ids_" + key]])
                hidden = model.backbone(input_ids=ids, use_cache=False).last_hidden_state[0]
                out["hidden_" + key] = hidden.float().contiguous()
                # The head on these states must give the fixture's logits, or the states are not
                # the ones the references were made from.
                logits = model(input_ids=ids, use_cache=False).logits[0]
                stored = load_file(os.path.join(case_dir, "reference.safetensors"))["logits_" + key]
                err = ((logits - stored).norm() / stored.norm()).item()
                assert err < 1e-5, f"{case}: logits differ from the fixture by {err}"
        save_file(out, os.path.join(case_dir, "embedding_reference.safetensors"))
        with open(os.path.join(case_dir, "embedding_reference.json"), "w") as f:
            json.dump({"case": case, "transformers_version": transformers.__version__,
                       "torch_version": torch.__version__,
                       "hidden_long": "backbone(ids_long of reference.json).last_hidden_state[0]",
                       "hidden_short": "backbone(ids_short of reference.json).last_hidden_state[0]"},
                      f, indent=1)
        print(f"{case}: hidden_long {tuple(out['hidden_long'].shape)}, "
              f"hidden_short {tuple(out['hidden_short'].shape)}")


if __name__ == "__main__":
    main()
