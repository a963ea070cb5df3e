#!/usr/bin/env python3
"""Hugging Face Transformers eager bf16 baseline for xlstm-bench, on the same model shapes.

Builds xLSTMForCausalLM(xLSTMConfig(...)) directly on the GPU with random weights (HF's init,
then every all-zero tensor - HF zero-inits the gate weights and biases - refilled with
N(0, 0.02) so that no weight is zero), converts it to bf16 and measures, like xlstm-bench:

  decode   tok/s at each batch B: B random prompts of --prompt tokens prefilled in one forward,
           then timed single-token steps model(input_ids=next, cache_params=cache,
           use_cache=True), greedy (argmax fed back), the ids copied to the host every step as
           generate() and a server do; tok/s = B * steps / time, median of repeats.
  prefill  tok/s for b rows x T tokens in one forward with last-position logits only
           (backbone + lm_head on the last position + soft-cap; --prefill-logits all runs the
           full model(), whose lm_head covers every position, as generate() does).
  ttft     batch 1: the prompt through model(...) as generate() runs it, until the first token
           id is on the host.

torch.cuda.synchronize() brackets every timing; warmup first; median of --repeats.

  python3 tools/bench/hf_bench.py --shapes 162m,407m,7b --json hf.json --skip-7b-batches 64
"""

import argparse
import datetime
import inspect
import json
import os
import statistics
import sys
import time

SHAPES = {"162m": (768, 12, 4), "407m": (1024, 24, 4), "7b": (4096, 32, 8)}
VOCAB = 50304


def parse_shape(name):
    if name in SHAPES:
        return SHAPES[name]
    parts = name.split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise SystemExit(f"hf_bench: unknown shape {name!r} (162m, 407m, 7b or DxLxNH)")
    return tuple(int(p) for p in parts)


def int_list(text):
    values = [int(v) for v in text.split(",") if v]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"not a list of positive integers: {text!r}")
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="162m,407m,7b")
    p.add_argument("--decode-batches", type=int_list, default=[1, 8, 64])
    p.add_argument("--prompt", type=int, default=128, help="decode prompt tokens per row")
    p.add_argument("--steps", type=int, default=32, help="timed decode steps per repeat")
    p.add_argument("--prefill-tokens", type=int, default=2048)
    p.add_argument("--prefill-batches", type=int_list, default=[1, 8])
    p.add_argument("--prefill-logits", choices=["last", "all"], default="last")
    p.add_argument("--ttft-prompts", type=int_list, default=[128, 2048])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget-s", type=float, default=10.0,
                   help="soft cap on one decode measurement's timed seconds (fewer steps)")
    p.add_argument("--skip-7b-batches", type=int_list, default=[],
                   help="decode batches not run for the 7b shape (e.g. 64)")
    p.add_argument("--skip", default="",
                   help="comma list of SHAPE:KIND:N to skip, e.g. 7b:decode:64,7b:prefill:8")
    p.add_argument("--no-host-sync", action="store_true",
                   help="do not copy each decode step's ids to the host (lets the CPU run ahead)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", default="")
    p.add_argument("--commit", default="unknown")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1 or args.steps < 1:
        p.error("--warmup, --repeats and --steps must be >= 1")
    args.skip_set = {s.strip() for s in args.skip.split(",") if s.strip()}
    for b in args.skip_7b_batches:
        args.skip_set.add(f"7b:decode:{b}")
    return args


def median(values):
    return statistics.median(values)


class Bench:
    def __init__(self, args):
        import torch
        import transformers
        from transformers import xLSTMConfig, xLSTMForCausalLM

        self.torch = torch
        self.transformers = transformers
        self.xLSTMConfig = xLSTMConfig
        self.xLSTMForCausalLM = xLSTMForCausalLM
        self.args = args
        self.device = torch.device("cuda")
        self.gen = torch.Generator(device="cpu").manual_seed(args.seed)

    def sync(self):
        self.torch.cuda.synchronize()

    def random_ids(self, rows, tokens):
        ids = self.torch.randint(0, VOCAB, (rows, tokens), generator=self.gen)
        return ids.to(self.device)

    def build(self, d, layers, heads):
        torch = self.torch
        cfg = self.xLSTMConfig(
            vocab_size=VOCAB, hidden_size=d, num_hidden_layers=layers, num_heads=heads,
            mode="inference", chunkwise_kernel="chunkwise--native_autograd",
            sequence_kernel="native_sequence__native", step_kernel="native")
        torch.manual_seed(self.args.seed)
        # Built in fp32 directly on the GPU (no host copy of the 7B), then converted.
        with torch.device(self.device):
            model = self.xLSTMForCausalLM(cfg)
        model = model.to(dtype=torch.bfloat16).eval()
        refilled = []
        with torch.no_grad():
            for name, param in model.named_parameters():
                if not bool(torch.any(param != 0)):
                    param.normal_(0.0, 0.02)
                    refilled.append(name)
        torch.cuda.empty_cache()
        forward_params = inspect.signature(model.forward).parameters
        self.cache_kwarg = "cache_params" if "cache_params" in forward_params else "past_key_values"
        return cfg, model, refilled

    @staticmethod
    def cache_of(out):
        for key in ("cache_params", "past_key_values"):
            cache = getattr(out, key, None)
            if cache is not None:
                return cache
        raise RuntimeError("the model returned no cache (cache_params / past_key_values)")

    def decode(self, model, batch):
        torch, a = self.torch, self.args
        with torch.inference_mode():
            prompt = self.random_ids(batch, a.prompt)
            out = model(input_ids=prompt, use_cache=True)
            cache = self.cache_of(out)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            del out
            state = {"cache": cache, "next": nxt}

            def step():
                out = model(input_ids=state["next"], use_cache=True,
                            **{self.cache_kwarg: state["cache"]})
                state["cache"] = self.cache_of(out)
                state["next"] = out.logits[:, -1].argmax(-1, keepdim=True)
                if not a.no_host_sync:
                    state["next"].cpu()

            self.sync()
            t0 = time.perf_counter()
            for _ in range(a.warmup):
                step()
            self.sync()
            warm_step = (time.perf_counter() - t0) / a.warmup
            steps = a.steps
            if warm_step * steps * a.repeats > a.budget_s:
                steps = min(a.steps, max(3, int(a.budget_s / (warm_step * a.repeats))))
            rates, step_ms = [], []
            for _ in range(a.repeats):
                self.sync()
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                self.sync()
                dt = time.perf_counter() - t0
                rates.append(batch * steps / dt)
                step_ms.append(1e3 * dt / steps)
        result = {"batch": batch, "prompt_tokens": a.prompt, "status": "ok",
                  "steps_per_repeat": steps, "repeats": a.repeats, "tok_s": median(rates),
                  "min_tok_s": min(rates), "max_tok_s": max(rates), "step_ms": median(step_ms)}
        if steps < a.steps:
            result["note"] = f"steps cut from {a.steps} to {steps} by --budget-s {a.budget_s:g}"
        return result

    def last_token(self, model, ids, logits_mode):
        """Runs a prompt and returns the greedy next ids (on the device)."""
        if logits_mode == "all":
            out = model(input_ids=ids, use_cache=True)
            return out.logits[:, -1].argmax(-1)
        out = model.backbone(input_ids=ids, use_cache=True)
        hidden = out.last_hidden_state[:, -1:]
        logits = model.lm_head(hidden.to(model.lm_head.weight.dtype)).float()
        cap = model.config.output_logit_soft_cap
        if cap is not None:
            logits = cap * self.torch.tanh(logits / cap)
        return logits[:, -1].argmax(-1)

    def prefill(self, model, batch):
        torch, a = self.torch, self.args
        t = a.prefill_tokens
        with torch.inference_mode():
            ids = self.random_ids(batch, t)
            times = []
            for i in range(a.warmup + a.repeats):
                self.sync()
                t0 = time.perf_counter()
                self.last_token(model, ids, a.prefill_logits)
                self.sync()
                if i >= a.warmup:
                    times.append(time.perf_counter() - t0)
        ms = 1e3 * median(times)
        return {"batch": batch, "tokens_per_row": t, "logits": a.prefill_logits, "status": "ok",
                "repeats": a.repeats, "ms": ms, "tok_s": batch * t / (ms / 1e3)}

    def ttft(self, model, prompt_tokens):
        torch, a = self.torch, self.args
        with torch.inference_mode():
            ids = self.random_ids(1, prompt_tokens)
            times = []
            for i in range(a.warmup + a.repeats):
                self.sync()
                t0 = time.perf_counter()
                token = int(self.last_token(model, ids, "all")[0].item())  # as generate() does
                dt = time.perf_counter() - t0
                if not 0 <= token < VOCAB:
                    raise RuntimeError(f"token id {token} outside the vocabulary")
                if i >= a.warmup:
                    times.append(dt)
        return {"batch": 1, "prompt_tokens": prompt_tokens, "status": "ok", "repeats": a.repeats,
                "ms": 1e3 * median(times), "min_ms": 1e3 * min(times), "logits": "all"}

    def run_shape(self, shape):
        torch, a = self.torch, self.args
        d, layers, heads = parse_shape(shape)
        s = {"shape": shape, "weight_dtype": "bf16"}
        start = time.perf_counter()
        torch.cuda.reset_peak_memory_stats()
        cfg, model, refilled = self.build(d, layers, heads)
        s["build_s"] = time.perf_counter() - start
        s["config"] = {"vocab_size": VOCAB, "hidden_size": d, "num_blocks": layers,
                       "num_heads": heads}
        for key in ("mode", "chunkwise_kernel", "sequence_kernel", "step_kernel",
                    "inference_state_dtype", "max_inference_chunksize"):
            s["config"][key] = getattr(cfg, key, None)
        s["params"] = {"total": sum(p.numel() for p in model.parameters())}
        s["refilled_zero_tensors"] = len(refilled)
        s["cache_kwarg"] = self.cache_kwarg
        s["weight_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())

        def guarded(kind, n, fn, base):
            if f"{shape}:{kind}:{n}" in a.skip_set:
                return dict(base, status="skipped", reason="--skip")
            try:
                return fn()
            except torch.cuda.OutOfMemoryError as e:
                torch.cuda.empty_cache()
                return dict(base, status="skipped", reason=f"out of memory: {str(e)[:200]}")
            except Exception as e:  # recorded, the run goes on
                torch.cuda.empty_cache()
                return dict(base, status="error", reason=f"{type(e).__name__}: {str(e)[:300]}")

        s["decode"] = [guarded("decode", b, lambda b=b: self.decode(model, b),
                               {"batch": b, "prompt_tokens": a.prompt})
                       for b in a.decode_batches]
        s["prefill"] = [guarded("prefill", b, lambda b=b: self.prefill(model, b),
                                {"batch": b, "tokens_per_row": a.prefill_tokens})
                        for b in a.prefill_batches]
        s["ttft"] = [guarded("ttft", p, lambda p=p: self.ttft(model, p), {"prompt_tokens": p})
                     for p in a.ttft_prompts]
        s["memory"] = {"max_allocated_bytes": torch.cuda.max_memory_allocated(),
                       "max_reserved_bytes": torch.cuda.max_memory_reserved()}
        del model
        torch.cuda.empty_cache()
        s["wall_s"] = time.perf_counter() - start
        return s


def markdown(s):
    lines = [f"\n### HF eager {s['shape']}: D={s['config']['hidden_size']}, "
             f"{s['config']['num_blocks']} blocks, {s['config']['num_heads']} heads, "
             f"{s['params']['total'] / 1e9:.3f} B params, bf16\n",
             "| measurement | measured |", "|---|---|"]

    def cell(e, text):
        return text if e.get("status") == "ok" else f"{e.get('status')}: {e.get('reason', '')}"

    for e in s["decode"]:
        lines.append(f"| decode B={e['batch']} | " + cell(
            e, f"{e.get('tok_s', 0):,.1f} tok/s ({e.get('step_ms', 0):.2f} ms/step)") + " |")
    for e in s["prefill"]:
        lines.append(f"| prefill {e['batch']} x {e['tokens_per_row']} | " + cell(
            e, f"{e.get('tok_s', 0):,.0f} tok/s ({e.get('ms', 0):.1f} ms)") + " |")
    for e in s["ttft"]:
        lines.append(f"| TTFT {e['prompt_tokens']} tokens, B=1 | " + cell(
            e, f"{e.get('ms', 0):.1f} ms") + " |")
    return "\n".join(lines)


def main(argv):
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("hf_bench: no CUDA device")
    bench = Bench(args)
    props = torch.cuda.get_device_properties(0)
    try:
        from transformers.utils import is_xlstm_available
        external = bool(is_xlstm_available())
    except ImportError:
        external = None
    out = {
        "tool": "hf_bench",
        "gpu": {"name": props.name, "sm_count": props.multi_processor_count,
                "compute_capability": props.major * 10 + props.minor,
                "total_bytes": props.total_memory},
        "commit": args.commit,
        "command_line": " ".join([sys.executable, sys.argv[0]] + argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"torch": torch.__version__, "transformers": bench.transformers.__version__,
                     "cuda": torch.version.cuda, "external_xlstm_kernels": external},
        "settings": {"decode_prompt": args.prompt, "decode_steps": args.steps,
                     "prefill_tokens": args.prefill_tokens, "prefill_logits": args.prefill_logits,
                     "repeats": args.repeats, "warmup": args.warmup,
                     "host_sync_per_step": not args.no_host_sync, "skip": sorted(args.skip_set),
                     "timing": "perf_counter around torch.cuda.synchronize(); median of repeats"},
        "shapes": [],
    }
    print(f"# HF transformers {bench.transformers.__version__} eager bf16 on {props.name}")
    rc = 0
    for shape in args.shapes.split(","):
        try:
            s = bench.run_shape(shape)
        except Exception as e:  # a shape that cannot even be built is recorded, not fatal
            s = {"shape": shape, "error": f"{type(e).__name__}: {e}"}
            rc = 1
            torch.cuda.empty_cache()
        out["shapes"].append(s)
        print(markdown(s) if "error" not in s else f"\n### HF {shape}: failed: {s['error']}",
              flush=True)
        if args.json:
            tmp = args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(out, f, indent=2)
                f.write("\n")
            os.replace(tmp, args.json)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
