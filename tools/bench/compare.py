#!/usr/bin/env python3
"""Side-by-side table of xlstm-bench (ours) and hf_bench.py (Hugging Face eager) JSON results.

  python3 tools/bench/compare.py --ours ours_small.json ours_7b.json --hf hf.json --out compare.md

Several files per side are merged by shape (a later file's shape replaces an earlier one's).
Columns: ours, HF, speedup (ours / HF for tok/s, HF / ours for milliseconds), and each side's %
of the limit that xlstm-bench computed for the shape: the bandwidth roofline for decode
(B * BW / (W + B * 2 * S), BW measured in the same xlstm-bench run), the bf16 compute floor for
prefill, and max(compute floor, weight read time) for TTFT. HF's % uses the same limit.
"""

import argparse
import json
import sys


def load(paths):
    runs, shapes = [], {}
    for path in paths:
        try:
            with open(path) as f:
                run = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"compare: skipping {path}: {e}", file=sys.stderr)
            continue
        runs.append((path, run))
        for s in run.get("shapes", []):
            shapes[s["shape"]] = s
    return runs, shapes


def by_key(entries, key):
    return {e.get(key): e for e in entries or []}


def ok(e):
    return e is not None and e.get("status") == "ok"


def fmt_rate(e):
    if e is None:
        return "—"
    if not ok(e):
        return f"{e.get('status', '?')}: {e.get('reason', '')}".replace("|", "/")
    return f"{e['tok_s']:,.0f} tok/s"


def fmt_ms(e):
    if e is None:
        return "—"
    if not ok(e):
        return f"{e.get('status', '?')}: {e.get('reason', '')}".replace("|", "/")
    return f"{e['ms']:.2f} ms"


def pct(value):
    return "—" if value is None else f"{value:.1f}%"


def ratio(num, den):
    return "—" if not num or not den else f"{num / den:.1f}×"


def header(runs, label):
    lines = []
    for path, run in runs:
        bits = [f"**{label}** `{path}`: {run.get('gpu', {}).get('name', '?')}",
                f"commit `{run.get('commit', '?')}`", run.get("timestamp", "?")]
        if "bandwidth_gb_per_s" in run:
            bits.append(f"measured bandwidth {run['bandwidth_gb_per_s']:.0f} GB/s")
        if "versions" in run:
            v = run["versions"]
            bits.append(f"torch {v.get('torch')}, transformers {v.get('transformers')}, "
                        f"external xLSTM kernels: {v.get('external_xlstm_kernels')}")
        lines.append("- " + "; ".join(bits))
        lines.append(f"  - command: `{run.get('command_line', '?')}`")
    return lines


def shape_table(name, ours, hf):
    lines = []
    cfg = (ours or hf or {}).get("config", {})
    title = (f"### {name}: D={cfg.get('hidden_size', '?')}, {cfg.get('num_blocks', '?')} blocks, "
             f"{cfg.get('num_heads', '?')} heads, vocab {cfg.get('vocab_size', '?')}")
    lines.append(title)
    lines.append("")
    if ours and "bandwidth" in ours:
        lines.append(f"Ours: bandwidth {ours['bandwidth']['gb_per_s']:.0f} GB/s, "
                     f"W = {ours.get('weight_bytes_per_step', 0) / 1e9:.3f} GB/step, "
                     f"S = {ours.get('state_bytes_per_sequence', 0) / 1e6:.1f} MB/sequence, "
                     f"{ours.get('num_slots', '?')} slots, GPU memory in use "
                     f"{ours.get('memory', {}).get('device_used_bytes_peak_sampled', 0) / 1e9:.2f} GB"
                     + (f"; HF peak allocated "
                        f"{hf.get('memory', {}).get('max_allocated_bytes', 0) / 1e9:.2f} GB"
                        if hf and "memory" in hf else ""))
        lines.append("")
    for side, s in (("ours", ours), ("HF", hf)):
        if s and "error" in s:
            lines.append(f"**{side} failed**: {s['error']}")
            lines.append("")
    lines.append("| measurement | ours | HF eager | speedup | ours % of limit | HF % of limit "
                 "| limit |")
    lines.append("|---|---|---|---|---|---|---|")

    # Ours may hold several decode modes and paths per batch: the headline one goes here.
    o_head = [e for e in (ours or {}).get("decode") or [] if e.get("headline", True)]
    o_dec, h_dec = by_key(o_head, "batch"), by_key((hf or {}).get("decode"), "batch")
    for b in sorted(set(o_dec) | set(h_dec), key=lambda x: (x is None, x)):
        o, h = o_dec.get(b), h_dec.get(b)
        limit = (o or {}).get("roofline_tok_s")
        lines.append("| decode B={} | {} | {} | {} | {} | {} | {} |".format(
            b, fmt_rate(o), fmt_rate(h),
            ratio(o["tok_s"], h["tok_s"]) if ok(o) and ok(h) else "—",
            pct(o.get("pct_of_roofline")) if ok(o) else "—",
            pct(100 * h["tok_s"] / limit) if ok(h) and limit else "—",
            f"{limit:,.0f} tok/s (bandwidth)" if limit else "—"))

    def prefill_key(e):
        return (e.get("batch") or 0, e.get("tokens_per_row") or 0)

    o_pre = {prefill_key(e): e for e in (ours or {}).get("prefill") or []}
    h_pre = {prefill_key(e): e for e in (hf or {}).get("prefill") or []}
    for b, t in sorted(set(o_pre) | set(h_pre)):
        o, h = o_pre.get((b, t)), h_pre.get((b, t))
        limit = (o or {}).get("compute_floor_tok_s")
        lines.append("| prefill {} x {} | {} | {} | {} | {} | {} | {} |".format(
            b, t, fmt_rate(o), fmt_rate(h),
            ratio(o["tok_s"], h["tok_s"]) if ok(o) and ok(h) else "—",
            pct(o.get("pct_of_compute_floor")) if ok(o) else "—",
            pct(100 * h["tok_s"] / limit) if ok(h) and limit else "—",
            f"{limit:,.0f} tok/s (bf16 peak)" if limit else "—"))

    o_tt = by_key((ours or {}).get("ttft"), "prompt_tokens")
    h_tt = by_key((hf or {}).get("ttft"), "prompt_tokens")
    for p in sorted(set(o_tt) | set(h_tt), key=lambda x: (x is None, x)):
        o, h = o_tt.get(p), h_tt.get(p)
        floor = (o or {}).get("floor_ms")
        lines.append("| TTFT {} tokens, B=1 | {} | {} | {} | {} | {} | {} |".format(
            p, fmt_ms(o), fmt_ms(h),
            ratio(h["ms"], o["ms"]) if ok(o) and ok(h) else "—",
            pct(o.get("pct_of_floor")) if ok(o) else "—",
            pct(100 * floor / h["ms"]) if ok(h) and floor else "—",
            f"{floor:.2f} ms" if floor else "—"))
    lines.append("")
    return lines


def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours", nargs="+", required=True, help="xlstm-bench JSON file(s)")
    p.add_argument("--hf", nargs="*", default=[], help="hf_bench.py JSON file(s)")
    p.add_argument("--out", default="", help="markdown file to write (also printed)")
    args = p.parse_args(argv)

    ours_runs, ours = load(args.ours)
    hf_runs, hf = load(args.hf)
    if not ours and not hf:
        print("compare: no results to compare", file=sys.stderr)
        return 1
    lines = ["# xLSTM serving: xlstm-bench (ours) vs. Hugging Face Transformers eager (bf16)", ""]
    lines += header(ours_runs, "ours") + header(hf_runs, "HF")
    gpus = {run.get("gpu", {}).get("name") for _, run in ours_runs + hf_runs}
    if len(gpus) > 1:
        lines.append(f"- **warning**: results come from different GPUs: {sorted(map(str, gpus))}")
    lines += ["",
              "Speedup: ours / HF for tok/s, HF / ours for TTFT. Limits (from xlstm-bench): decode "
              "= bandwidth roofline B·BW/(W + 2·B·S); prefill = 2 FLOPs per linear weight per "
              "token at the bf16 peak; TTFT = max(that, W/BW). HF's % uses the same limit.", ""]
    order = [s for s in ("162m", "407m", "7b") if s in ours or s in hf]
    order += sorted((set(ours) | set(hf)) - set(order))
    for name in order:
        lines += shape_table(name, ours.get(name), hf.get(name))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
