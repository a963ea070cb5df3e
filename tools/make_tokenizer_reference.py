#!/usr/bin/env python3
"""Records Hugging Face `tokenizers` references for the C++ tokenizer's parity tests.

Two modes:

  --make-variant DIR   (needs no `tokenizers`) derives a small variant of the GPT-NeoX-20B
                       tokenizer into DIR: vocabulary cut to the first ids (merges kept when all
                       their tokens survive), add_prefix_space=true, and extra added tokens that
                       exercise lstrip / rstrip / single_word / normalized matching; plus a
                       tokenizer_config.json and special_tokens_map.json. Deterministic.
                       python3 tools/make_tokenizer_reference.py --make-variant tests/data/tokenizers/neox-variant

  --out FILE           (needs `tokenizers`; run on the GPU box) encodes a broad corpus with
                       Tokenizer.from_file(path).encode(text).ids and decodes with
                       decode(ids, skip_special_tokens=False/True) for both tokenizers, plus
                       decode-only cases whose ids split multi-byte characters, and writes
                       FILE (tests/data/tokenizer_reference.json).

The corpus: Latin with accents, combining marks that NFC changes, CJK, Arabic/Hebrew, emoji with
skin tones and ZWJ sequences, whitespace runs of every length 1-30 (alone and mixed with text),
tabs, CR/LF, contractions in both cases, digits, code, URLs, special tokens inside text, the
empty string, a few KB of prose (written for this project), and seeded random strings.
"""

import argparse
import json
import os
import random
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEOX = os.path.join(REPO, "tests", "data", "tokenizers", "gpt-neox-20b", "tokenizer.json")
VARIANT_DIR = os.path.join(REPO, "tests", "data", "tokenizers", "neox-variant")
VARIANT_VOCAB = 3000  # ids kept from GPT-NeoX-20B's vocabulary

# Prose written for this project (not copied from anywhere).
PROSE = [
    "The harbour town woke slowly that autumn. Fishermen checked their nets by lamplight, "
    "while the baker's ovens breathed warm air into the narrow streets. Nobody hurried; the "
    "tide would turn when it turned, and the boats would leave when the water allowed them.",
    "A recurrent network reads a sequence one step at a time and carries a small state from "
    "each step to the next. Because the state has a fixed size, the cost of reading another "
    "token does not grow with the length of the text that came before it.",
    "She had kept every letter in a tin box under the stairs. Some were written in pencil, "
    "some in blue ink that had faded to grey, and a few were typed on paper so thin that the "
    "words from the other side showed through like shadows.",
    "Engineers like to say that a system is only as fast as its slowest part. In practice the "
    "slowest part moves: once the disk is fast enough, the network becomes the limit, and once "
    "the network is fast enough, it is the memory that everyone starts to measure.",
    "The committee met on Tuesday, argued until Thursday, and agreed on Friday that it would "
    "meet again the following week. Minutes were taken, though nobody could later remember "
    "who had taken them or where they had been filed.",
    "In the mountains the weather changes within minutes. A clear sky can fill with cloud "
    "before you have finished your lunch, and a path that was dry in the morning can become a "
    "stream by the afternoon. Experienced walkers carry a spare layer, a map, and patience.",
    "He counted the steps from the station to the museum: four hundred and twelve, if you "
    "took the short cut through the park, or five hundred and three if the gate was locked, "
    "which it usually was on Sundays and public holidays.",
    "Good documentation answers the question the reader actually has. It says what a function "
    "returns when things go wrong, which inputs it refuses, and whether it is safe to call "
    "from two threads at once; the rest is decoration.",
    "The orchestra tuned for a long time. First the oboe gave its note, then the strings "
    "answered in a rising murmur, and finally the brass joined with a sound like a door "
    "opening somewhere far away. Then the hall fell silent.",
    "Our grandmother's recipe for apple cake fits on a single card. It asks for three eggs, a "
    "cup of sugar, a little butter, flour \"as needed\", and apples \"until it looks right\". "
    "We have never managed to make it taste the way hers did.",
    "Trains were late again this morning. The announcer apologised twice, once for the delay "
    "and once for the apology, which had been played in the wrong language. Passengers "
    "laughed, and for a moment the platform felt like a room full of friends.",
    "Every map is a set of decisions about what to leave out. A map that showed everything "
    "would be as large as the land itself and about as useful as no map at all.",
]

CODE = [
    "def fibonacci(n: int) -> int:\n"
    "    \"\"\"Returns the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n",
    "#include <cstdio>\n\nint main(int argc, char** argv) {\n"
    "  for (int i = 0; i < argc; ++i) {\n"
    "    std::printf(\"%d: %s\\n\", i, argv[i]);\n"
    "  }\n  return 0;\n}\n",
    "{\n  \"name\": \"xlstm-serve\",\n  \"version\": \"0.1.0\",\n"
    "  \"tags\": [\"rnn\", \"serving\"],\n  \"threshold\": 0.75\n}\n",
    "SELECT id, name, created_at\n  FROM users\n WHERE created_at >= '2024-01-01'\n"
    " ORDER BY created_at DESC\n LIMIT 10;\n",
    "fn main() {\n    let xs: Vec<u32> = (1..=10).collect();\n"
    "    let total: u32 = xs.iter().map(|x| x * x).sum();\n"
    "    println!(\"{total}\");\n}\n",
    "if [[ -f \"$HOME/.bashrc\" ]]; then\n\tsource \"$HOME/.bashrc\"\nfi\n"
    "for f in *.txt; do wc -l \"$f\"; done\n",
    "const add = (a, b) => a + b;\nexport default function App() {\n"
    "  return <div className=\"app\">{add(1, 2)}</div>;\n}\n",
]


def fixed_cases():
    """(name, text) pairs of the hand-written corpus."""
    c = []
    add = lambda name, text: c.append((name, text))
    add("empty", "")
    add("hello", "Hello world")
    add("latin_accents", "Café déjà vu, naïve façade, Ångström, São Paulo, Zürich, œuvre, Łódź, "
        "Fußgängerübergänge, ÉCOLE, señor, İstanbul")
    add("nfc_e_acute", "e\u0301")
    add("nfc_cafe", "Cafe\u0301 and re\u0301sume\u0301")
    add("nfc_a_ring", "A\u030angstro\u0308m")
    add("nfc_multi_marks", "\u1e9b\u0323 o\u0308\u0304 q\u0307\u0323 a\u0323\u0302")
    add("nfc_hangul_jamo", "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af")
    add("nfc_singletons", "\u212b \u2126 \u2000 \u0344")
    add("nfc_devanagari", "\u0928\u093c \u0915\u093c\u093e")
    add("cjk", "日本語のテキストです。中文测试，繁體中文。한국어 텍스트입니다.")
    add("arabic", "مرحبا بالعالم! السعر 123 دولار.")
    add("hebrew", "שלום עולם, מה שלומך?")
    add("mixed_rtl", "The word שלום means peace; سلام too.")
    add("emoji_skin", "👍🏽 👋🏿 🙌🏻")
    add("emoji_zwj", "👨‍👩‍👧‍👦 🏳️‍🌈 🤷🏽‍♀️ ❤️ 🇩🇪🇯🇵 🧑‍💻")
    add("emoji_text", "I love it😀!Really🔥🔥🔥.")
    for n in range(1, 31):
        add(f"spaces_{n}", " " * n)
        add(f"spaces_mid_{n}", "a" + " " * n + "b")
        add(f"spaces_lead_{n}", " " * n + "word")
        add(f"spaces_trail_{n}", "word" + " " * n)
    for n in (1, 2, 3, 5, 8, 13):
        add(f"tabs_{n}", "x" + "\t" * n + "y")
        add(f"newlines_{n}", "x" + "\n" * n + "y")
    add("crlf", "line one\r\nline two\r\n\r\nline four\rend")
    add("mixed_ws", "a \t b\n \n c  \t\t  d \u00a0 e\u3000f\u2009g\u2003 h")
    add("nel", "x\u0085y \u0085 z")
    add("ws_only_mixed", " \t\n\r\n  \t ")
    add("contractions_lower", "it's don't I'm we're they've she'll he'd y'all")
    add("contractions_upper", "IT'S DON'T I'M WE'RE THEY'VE SHE'LL HE'D")
    add("contractions_mixed", "'s 'S 't 'T 'll 'LL 'Ll 're 'RE 've 'VE 'm 'M 'd 'D")
    add("digits", "1234567890 3.14159 1,000,000 007 2024-06-01 10:45")
    add("digits_unicode", "２０２４ ٣٤٥ ५६७ Ⅻ ½ ²")
    for i, code in enumerate(CODE):
        add(f"code_{i}", code)
    add("urls", "See https://example.com/path/to/page?query=1&b=two#frag or "
        "http://localhost:8080/v1/generate and mailto:someone@example.org.")
    add("special_middle", "Hello<|endoftext|>world")
    add("special_spaced", "Hello <|endoftext|> world")
    add("special_repeat", "<|endoftext|><|endoftext|><|unk|>")
    add("special_in_word", "pre<|endoftext|>post and a<|unk|>b")
    add("special_partial", "<|endoftext <|endoftext|| <|padding|> <|endoftext|>")
    add("special_nfc", "e<|endoftext|>\u0301")
    add("special_spaces", "a   <|endoftext|>    b")
    add("controls", "nul\x00 del\x7f bell\x07 zwsp\u200b bom\ufeff zwj\u200d")
    add("punctuation", "Well... (maybe) [not] {sure}?! — “quoted” ‘single’ «guillemets» …")
    add("math", "∑ x² ≤ ∫ f(x) dx; √2 ≈ 1.414; α+β=γ")
    add("fullwidth", "ＡＢＣ ａｂｃ １２３！")
    add("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis " * 3)
    add("repeated_char", "a" * 100 + " " + "-" * 80 + " " + "!" * 50)
    add("prose", "\n\n".join(PROSE))
    return c


def random_cases(seed, count, extra_pieces=()):
    rng = random.Random(seed)
    words = ["the", "The", "tokenizer", "model", "xLSTM", "state", "a", "I", "of", "and",
             "hello", "world", "Hello", "HELLO", "recurrent", "don't", "it's", "x", "EOS"]
    pieces = words + [
        " ", "  ", "   ", "    ", " " * 9, " " * 25, "\t", "\n", "\r\n", "\n\n", ".", ",", "!",
        "?", ";", ":", "-", "(", ")", "[", "]", "{", "}", "\"", "'", "/", "_", "#", "@", "$",
        "'s", "'T", "'ll", "'RE", "'d", "0", "42", "3.14", "1000000", "é", "ü", "Å", "ñ", "ç",
        "\u0301", "\u0300", "\u0308", "\u0323", "\u030a", "\u0303", "e\u0301", "A\u030a",
        "日", "本", "語", "中文", "한", "국", "\u1100\u1161", "\u11a8", "مرحبا", "שלום", "١٢",
        "👍", "🏽", "\u200d", "\ufe0f", "👨‍👩‍👧", "🔥", "🇩🇪", "<|endoftext|>", "<|unk|>",
        "<|endoftext", "\u00a0", "\u3000", "\u2009", "\u0085", "\u200b", "\x00", "ＡＢ", "∑",
        "½", "Ⅻ", "\u212b", "\u2126",
    ] + list(extra_pieces)
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
              (0x5D0, 0x5EA), (0x620, 0x64A), (0x900, 0x97F), (0x1100, 0x11FF), (0x2000, 0x206F),
              (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1F64F)]
    cases = []
    for i in range(count):
        if i % 3 == 2:
            # Raw code points from a spread of scripts (combining marks included).
            n = rng.randint(1, 30)
            chars = []
            for _ in range(n):
                lo, hi = rng.choice(ranges)
                chars.append(chr(rng.randint(lo, hi)))
            text = "".join(chars)
        else:
            n = rng.randint(1, 25)
            text = "".join(rng.choice(pieces) for _ in range(n))
        cases.append((f"random_{seed}_{i}", text))
    return cases


def variant_cases():
    c = [
        ("v_prefix_space", "hello"),
        ("v_leading_space", " hello"),
        ("v_two_leading_spaces", "  hello"),
        ("v_mask_lstrip", "hello   <mask> world"),
        ("v_mask_start", "<mask>hello"),
        ("v_sep_rstrip", "left<sep>    right"),
        ("v_sep_end", "end<sep>   "),
        ("v_mask_sep", "a <mask> <sep> b"),
        ("v_single_word_ok", "say hello world now"),
        ("v_single_word_inside", "sayhello world now"),
        ("v_single_word_after", "hello worlds"),
        ("v_single_word_punct", "(hello world)"),
        ("v_angstrom_sign", "\u212b and \u00c5 and A\u030a"),
        ("v_decomposed_raw", "e\u0301x vs \u00e9x"),
        ("v_im_start", "<|im_start|>user\nHi<|im_end|>"),
        ("v_special_between", "a<|endoftext|>b"),
        ("v_spaces", "a  b   c"),
        ("v_empty", ""),
        ("v_only_space", " "),
        ("v_newline_start", "\nnext"),
    ]
    return c + random_cases(
        seed=7, count=60,
        extra_pieces=["<mask>", "<sep>", "hello world", "<|im_start|>", "<|im_end|>", "e\u0301x"])


# ----------------------------------------------------------------------------------------------
# Variant tokenizer (no `tokenizers` needed).

def make_variant(out_dir):
    with open(NEOX, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = {t: i for t, i in tok["model"]["vocab"].items() if i < VARIANT_VOCAB}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(f"{a} {b}")
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = merges
    for key in ("pre_tokenizer", "post_processor", "decoder"):
        tok[key]["add_prefix_space"] = True

    def added(i, content, special, normalized, lstrip=False, rstrip=False, single_word=False):
        return {"id": i, "content": content, "single_word": single_word, "lstrip": lstrip,
                "rstrip": rstrip, "normalized": normalized, "special": special}

    n = len(vocab)
    tok["added_tokens"] = [
        added(0, "<|endoftext|>", True, False),
        added(1, "<|unk|>", True, False),
        added(n, "  ", False, True),
        added(n + 1, "<mask>", True, False, lstrip=True),
        added(n + 2, "<sep>", True, False, rstrip=True),
        added(n + 3, "hello world", False, True, single_word=True),
        added(n + 4, "\u212b", False, True),
        added(n + 5, "e\u0301x", False, False),
        added(n + 6, "<|im_start|>", True, True),
        added(n + 7, "<|im_end|>", True, False),
    ]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False, "special": True},
        "eos_token": "<sep>",
        "unk_token": "<|unk|>",
        "tokenizer_class": "GPTNeoXTokenizer",
        "model_max_length": 2048,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    special_map = {"bos_token": "<|endoftext|>", "eos_token": "<sep>", "unk_token": "<|unk|>"}
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special_map, f, indent=2)
        f.write("\n")
    print(f"variant: {len(vocab)} vocab, {len(merges)} merges -> {out_dir}")


# ----------------------------------------------------------------------------------------------
# References (needs `tokenizers`).

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def byte_ids(tok, data):
    table = bytes_to_unicode()
    ids = [tok.token_to_id(table[b]) for b in data]
    assert None not in ids, f"a byte of {data!r} has no token"
    return ids


def decode_cases(tok, name_prefix):
    """Id sequences that split multi-byte characters or are not UTF-8 at all."""
    cases = []
    for text in ["🤷🏽‍♀️", "日本語", "naïve ✓", "👨‍👩‍👧‍👦!", "ä€𝄞"]:
        ids = tok.encode(text).ids
        for k in range(1, len(ids) + 1):
            cases.append((f"{name_prefix}prefix_{len(cases)}", ids[:k]))
        # Each byte as its own token.
        cases.append((f"{name_prefix}bytes_{len(cases)}", byte_ids(tok, text.encode("utf-8"))))
        cases.append((f"{name_prefix}bytes_cut_{len(cases)}",
                      byte_ids(tok, text.encode("utf-8")[:-1])))
    # (Bytes 0xC0, 0xC1 and 0xF5-0xFF never occur in UTF-8 and have no token in this vocabulary.)
    raw = [b"\xe2", b"\xe2A", b"\xe2\x82", b"\xe2\x82A", b"\xf0\x9f", b"\xf0\x9f\x98", b"\x80",
           b"A\x80\x80B", b"\xbf", b"\xc2\xc2", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
           b"\xf0\x8f\xbf\xbf", b"\xc3", b"\xc3\xa4\xc3", b"\xe0\x80\x80", b"\xf0\x80",
           b"\xe2\x82\xe2\x82\xac", b"ok\xf0\x9f\x98\x80\xf0", b"\xf4\x8f\xbf\xbf", b"\xe2\x28\xa1",
           b"\xf1\x80\x80", b"\xf1\x80\x80A", b"\xed\x9f\xbf", b"\xee\x80"]
    for data in raw:
        cases.append((f"{name_prefix}raw_{data.hex()}", byte_ids(tok, data)))
    eot = tok.token_to_id("<|endoftext|>")
    unk = tok.token_to_id("<|unk|>")
    hello = tok.encode("Hello world").ids
    cases.append((f"{name_prefix}specials", [eot] + hello + [unk, eot]))
    cases.append((f"{name_prefix}special_splits_char",
                  byte_ids(tok, b"\xe2\x82") + [eot] + byte_ids(tok, b"\xac")))
    return cases


def record(tok, tokenizer_name, cases, dec_cases):
    enc = []
    for name, text in cases:
        ids = tok.encode(text).ids
        enc.append({"tokenizer": tokenizer_name, "name": name, "text": text, "ids": ids,
                    "decoded": tok.decode(ids, skip_special_tokens=False),
                    "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    dec = []
    for name, ids in dec_cases:
        dec.append({"tokenizer": tokenizer_name, "name": name, "ids": ids,
                    "text": tok.decode(ids, skip_special_tokens=False),
                    "text_skip": tok.decode(ids, skip_special_tokens=True)})
    return enc, dec


def make_reference(out_path):
    import tokenizers
    from tokenizers import Tokenizer

    meta = {"tokenizers_version": tokenizers.__version__}
    try:
        import transformers
        meta["transformers_version"] = transformers.__version__
    except ImportError:
        pass
    neox = Tokenizer.from_file(NEOX)
    try:
        variant = Tokenizer.from_file(os.path.join(VARIANT_DIR, "tokenizer.json"))
    except Exception as e:  # Keep the GPT-NeoX references even if the variant breaks.
        meta["variant_error"] = repr(e)[:500]
        variant = None

    enc, dec = record(neox, "gpt-neox-20b", fixed_cases() + random_cases(seed=1, count=240),
                      decode_cases(neox, ""))
    venc, vdec = [], []
    try:
        if variant is not None:
            venc, vdec = record(variant, "neox-variant", variant_cases() + fixed_cases()[:40],
                                decode_cases(variant, "v_"))
    except Exception as e:  # Keep the GPT-NeoX references even if the variant breaks.
        meta["variant_error"] = repr(e)[:500]
    info = {}
    for name, tok in (("gpt-neox-20b", neox), ("neox-variant", variant)):
        if tok is None:
            continue
        info[name] = {
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "token_to_id": {t: tok.token_to_id(t) for t in
                            ["<|endoftext|>", "<|unk|>", "  ", "<mask>", "<sep>", "hello world",
                             "Hello", "Ġworld", "\u212b"] if tok.token_to_id(t) is not None},
        }
        try:
            info[name]["added_tokens"] = {
                str(k): v.content for k, v in tok.get_added_tokens_decoder().items()}
        except Exception as e:
            info[name]["added_tokens_error"] = repr(e)[:300]
    # HF silently drops ids outside the vocabulary (the C++ Decode rejects them instead).
    try:
        info["gpt-neox-20b"]["decode_out_of_range"] = neox.decode([12092, 10 ** 6, 1533])
    except Exception as e:
        info["gpt-neox-20b"]["decode_out_of_range_error"] = repr(e)[:300]
    # What transformers makes of the variant's config files (BOS/EOS, add_bos_token).
    try:
        from transformers import AutoTokenizer
        auto = AutoTokenizer.from_pretrained(VARIANT_DIR)
        info.setdefault("neox-variant", {})["transformers"] = {
            "bos_token_id": auto.bos_token_id, "eos_token_id": auto.eos_token_id,
            "input_ids_hello": auto("hello")["input_ids"]}
    except Exception as e:  # Recorded, not fatal: the tokenizer references are what matter.
        info.setdefault("neox-variant", {})["transformers_error"] = repr(e)[:300]

    reference = {
        "meta": meta,
        "tokenizers": {"gpt-neox-20b": "tokenizers/gpt-neox-20b/tokenizer.json",
                       "neox-variant": "tokenizers/neox-variant/tokenizer.json"},
        "info": info,
        "encode": enc + venc,
        "decode": dec + vdec,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path}: {len(enc) + len(venc)} encode cases, {len(dec) + len(vdec)} "
          f"decode cases, tokenizers {meta['tokenizers_version']}, "
          f"{os.path.getsize(out_path)} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make-variant", metavar="DIR")
    parser.add_argument("--out", metavar="FILE")
    parser.add_argument("--extra-random", type=int, default=0, metavar="N",
                        help="also write N more random cases (GPT-NeoX-20B) to --extra-out")
    parser.add_argument("--extra-out", metavar="FILE")
    args = parser.parse_args()
    if not args.make_variant and not args.out:
        parser.error("give --make-variant DIR and/or --out FILE")
    if args.make_variant:
        make_variant(args.make_variant)
    if args.out:
        make_reference(args.out)
    if args.extra_random and args.extra_out:
        from tokenizers import Tokenizer
        enc, _ = record(Tokenizer.from_file(NEOX), "gpt-neox-20b",
                        random_cases(seed=99, count=args.extra_random), [])
        with open(args.extra_out, "w", encoding="utf-8") as f:
            json.dump({"encode": enc, "decode": []}, f, ensure_ascii=True, separators=(",", ":"))
        print(f"wrote {args.extra_out}: {len(enc)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
