// Every flag of xlstm-run, declared once: absl flags are process-global, so subcommands that
// share a flag name (--ids, --json, --model) share one definition.
#ifndef XLSTM_TOOLS_XLSTM_RUN_FLAGS_H_
#define XLSTM_TOOLS_XLSTM_RUN_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, backend);
ABSL_DECLARE_FLAG(bool, json);

// generate
ABSL_DECLARE_FLAG(std::string, ids);
ABSL_DECLARE_FLAG(std::string, prompt);
ABSL_DECLARE_FLAG(int32_t, max_new_tokens);
ABSL_DECLARE_FLAG(bool, greedy);
ABSL_DECLARE_FLAG(double, temperature);
ABSL_DECLARE_FLAG(int32_t, top_k);
ABSL_DECLARE_FLAG(double, top_p);
ABSL_DECLARE_FLAG(double, min_p);
ABSL_DECLARE_FLAG(double, repetition_penalty);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(bool, ignore_eos);

// score
ABSL_DECLARE_FLAG(std::string, context_ids);
ABSL_DECLARE_FLAG(std::string, continuation_ids);
ABSL_DECLARE_FLAG(std::string, context);
ABSL_DECLARE_FLAG(std::string, continuation);

// embed (and --ids / --prompt)
ABSL_DECLARE_FLAG(std::string, pooling);
ABSL_DECLARE_FLAG(bool, normalize);

// init-random
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(std::string, dtype);

// tokenize / detokenize (and init-random, to copy a tokenizer into the model directory)
ABSL_DECLARE_FLAG(std::string, tokenizer);
ABSL_DECLARE_FLAG(std::string, text);
ABSL_DECLARE_FLAG(bool, skip_special_tokens);

#endif  // XLSTM_TOOLS_XLSTM_RUN_FLAGS_H_
