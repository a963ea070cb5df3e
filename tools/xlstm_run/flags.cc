#include "tools/xlstm_run/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, model, "", "Model directory (config.json, model.safetensors[.index.json])");
ABSL_FLAG(std::string, backend, "cpu", "Compute backend: cpu");
ABSL_FLAG(bool, json, false, "Print machine-readable JSON");

ABSL_FLAG(std::string, ids, "", "Comma-separated token ids, e.g. 5,17,9");
ABSL_FLAG(std::string, prompt, "", "Prompt text (needs tokenizer.json in the model directory)");
ABSL_FLAG(int32_t, max_new_tokens, 16, "Number of tokens to generate (at most)");
ABSL_FLAG(bool, greedy, false,
          "Pick the most likely token at every step (same as --temperature 0)");
ABSL_FLAG(double, temperature, 1.0, "Sampling temperature; 0 means greedy");
ABSL_FLAG(int32_t, top_k, 0, "Keep only the k most likely tokens (0: all)");
ABSL_FLAG(double, top_p, 1.0, "Nucleus sampling: keep the smallest set with this much probability");
ABSL_FLAG(double, min_p, 0.0, "Drop tokens less likely than min_p times the most likely one");
ABSL_FLAG(double, repetition_penalty, 1.0, "Penalty (>1) for tokens already in the sequence");
ABSL_FLAG(uint64_t, seed, 0, "Random seed (sampling and init-random)");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after the end-of-sequence token");

ABSL_FLAG(std::string, context_ids, "", "Comma-separated context token ids");
ABSL_FLAG(std::string, continuation_ids, "", "Comma-separated continuation token ids");
ABSL_FLAG(std::string, context, "", "Context text (needs tokenizer.json)");
ABSL_FLAG(std::string, continuation, "", "Continuation text (needs tokenizer.json)");

ABSL_FLAG(std::string, pooling, "last",
          "embed: positions kept of the final hidden states: last, mean or all");
ABSL_FLAG(bool, normalize, false, "embed: scale each returned row to unit L2 norm");

ABSL_FLAG(std::string, config, "", "config.json to build a random model from");
ABSL_FLAG(std::string, out, "", "Output model directory");
ABSL_FLAG(std::string, dtype, "float32", "Weight dtype to write: float32, bfloat16 or float16");

ABSL_FLAG(std::string, tokenizer, "", "tokenizer.json file");
ABSL_FLAG(std::string, text, "", "Text to tokenize");
ABSL_FLAG(bool, skip_special_tokens, false, "Leave special tokens out of decoded text");
