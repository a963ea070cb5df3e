// xlstm-run: runs an xLSTM model in-process, without a server.
//
//   xlstm-run generate   --model DIR --ids 5,17,9 --max-new-tokens 24 --greedy --json
//   xlstm-run score      --model DIR --context-ids 5 --continuation-ids 17,9,4 --json
//   xlstm-run init-random --config CONFIG.json --seed S --out DIR
//   xlstm-run tokenize   --tokenizer FILE --text "..." --json
//   xlstm-run detokenize --tokenizer FILE --ids 1,2,3 --json
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_replace.h"
#include "tools/xlstm_run/commands.h"

namespace {

// absl flag names are C++ identifiers, but the documented spelling is --max-new-tokens. Rewrites
// the name part of every argument in flag position to underscores when that names a known flag;
// values (after '=' or in the next argument of a non-boolean flag) are left untouched.
std::vector<std::string> NormalizeFlagNames(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool next_is_value = false;
  for (const std::string& arg : args) {
    if (next_is_value || arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      next_is_value = false;
      out.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = absl::StrReplaceAll(
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), {{"-", "_"}});
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && name.rfind("no", 0) == 0) {
      flag = absl::FindCommandLineFlag(name.substr(2));  // --no-greedy style booleans
    }
    if (flag == nullptr) {
      out.push_back(arg);  // absl reports the unknown flag
      continue;
    }
    out.push_back("--" + name + (eq == std::string::npos ? "" : arg.substr(eq)));
    next_is_value = eq == std::string::npos && !flag->IsOfType<bool>();
  }
  return out;
}

constexpr char kUsage[] =
    "xlstm-run <command> [flags]\n"
    "commands:\n"
    "  generate     generate tokens from --ids or --prompt\n"
    "  score        log-probabilities of a continuation given a context\n"
    "  init-random  write a random-weight model directory from a config.json\n"
    "  tokenize     text to token ids\n"
    "  detokenize   token ids to text\n"
    "Run 'xlstm-run <command> --help' for the flags.";

struct Command {
  std::string_view name;
  int (*run)();
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  const std::vector<Command> commands = {
      {"generate", xlstm::run::RunGenerate},      {"score", xlstm::run::RunScore},
      {"init-random", xlstm::run::RunInitRandom}, {"tokenize", xlstm::run::RunTokenize},
      {"detokenize", xlstm::run::RunDetokenize},
  };
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string_view name = argv[1];
  for (const Command& command : commands) {
    if (command.name != name) continue;
    // Parse the flags that follow the command name; argv[1] is dropped so absl sees
    // "xlstm-run --flag ...".
    std::vector<std::string> raw_args(argv + 2, argv + argc);
    std::vector<std::string> normalized = NormalizeFlagNames(raw_args);
    std::vector<char*> args;
    args.push_back(argv[0]);
    for (std::string& arg : normalized) args.push_back(arg.data());
    std::vector<char*> positional =
        absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
    if (positional.size() > 1) {
      std::fprintf(stderr, "xlstm-run %s: unexpected argument '%s'\n", argv[1], positional[1]);
      return 2;
    }
    return command.run();
  }
  std::fprintf(stderr, "xlstm-run: unknown command '%s'\n%s\n", argv[1], kUsage);
  return 2;
}
