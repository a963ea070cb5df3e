#!/usr/bin/env python3
"""Encode throughput of HF `tokenizers` vs. xlstm-tokenizer-bench on the same text.

Generates two deterministic texts of >= 1 MB each (English prose and code, permuted from the
project's own snippets in make_tokenizer_reference.py) into --workdir, measures HF
Tokenizer.encode single-threaded (first call on a fresh tokenizer, best of 5 repeats, and
line-by-line), then runs the C++ bench (--cxx-bench) on the same files and prints both, with an
FNV-1a checksum of the ids so the two are known to agree.

  python3 tools/bench_tokenizer_hf.py --workdir /tmp/tokbench \
      --cxx-bench build/engine/tokenizer/xlstm-tokenizer-bench --out bench.json
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_reference as ref  # noqa: E402

TARGET_BYTES = 1_200_000


def prose_text(seed=1234):
    rng = random.Random(seed)
    sentences = [s for p in ref.PROSE for s in re.split(r"(?<=[.;])\s+", p) if s]
    out, size = [], 0
    while size < TARGET_BYTES:
        paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 7)))
        out.append(paragraph)
        size += len(paragraph.encode("utf-8")) + 2
    return "\n\n".join(out) + "\n"


def code_text(seed=4321):
    rng = random.Random(seed)
    names = ["value", "count", "index", "buffer", "result", "total", "item", "node", "state",
             "limit", "offset", "tokens", "weights", "cache", "queue", "handle"]
    out, size = [], 0
    while size < TARGET_BYTES:
        snippet = rng.choice(ref.CODE)
        # Vary identifiers and numbers so the text is not one block repeated.
        snippet = re.sub(r"\b(a|b|x|xs|total|i|f)\b",
                         lambda m: rng.choice(names) if rng.random() < 0.5 else m.group(0),
                         snippet)
        snippet = re.sub(r"\b\d+\b", lambda m: str(rng.randint(0, 10000)), snippet)
        out.append(snippet)
        size += len(snippet.encode("utf-8")) + 1
    return "\n".join(out)


def checksum(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        for k in range(4):
            h ^= (i >> (8 * k)) & 0xFF
            h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def bench_hf(tokenizer_path, path):
    from tokenizers import Tokenizer
    with open(path, encoding="utf-8") as f:
        text = f.read()
    mb = len(text.encode("utf-8")) / 1e6
    tok = Tokenizer.from_file(tokenizer_path)
    start = time.perf_counter()
    ids = tok.encode(text).ids
    cold = time.perf_counter() - start
    best = cold
    for _ in range(5):
        start = time.perf_counter()
        tok.encode(text)
        best = min(best, time.perf_counter() - start)
    lines = text.splitlines(keepends=True)
    best_lines = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for line in lines:
            tok.encode(line)
        best_lines = min(best_lines, time.perf_counter() - start)
    return {"impl": "hf", "file": path, "bytes": len(text.encode("utf-8")), "tokens": len(ids),
            "checksum": checksum(ids), "cold_mb_s": round(mb / cold, 2),
            "warm_mb_s": round(mb / best, 2), "lines_mb_s": round(mb / best_lines, 2)}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default=ref.NEOX)
    parser.add_argument("--workdir", default="/tmp/tokbench")
    parser.add_argument("--cxx-bench", help="path of xlstm-tokenizer-bench")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    files = []
    for name, make in (("prose", prose_text), ("code", code_text)):
        path = os.path.join(args.workdir, f"{name}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(make())
        files.append(path)
    results = {"cpu": cpu_name(), "runs": []}
    try:
        import tokenizers
        results["tokenizers_version"] = tokenizers.__version__
        for path in files:
            results["runs"].append(bench_hf(args.tokenizer, path))
            print(json.dumps(results["runs"][-1]), flush=True)
    except ImportError:
        print("tokenizers not installed: HF side skipped", file=sys.stderr)
    if args.cxx_bench:
        proc = subprocess.run([args.cxx_bench, args.tokenizer] + files, capture_output=True,
                              text=True)
        sys.stderr.write(proc.stderr)
        for line in proc.stdout.splitlines():
            print(line, flush=True)
            results["runs"].append(json.loads(line))
    print(f"cpu: {results['cpu']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
