// xlstm-run: runs an xLSTM model in-process, without a server.
//
//   xlstm-run generate   --model DIR --ids 5,17,9 --max-new-tokens 24 --greedy --json
//   xlstm-run score      --model DIR --context-ids 5 --continuation-ids 17,9,4 --json
//   xlstm-run embed      --model DIR --ids 5,17,9 --pooling mean --normalize --json
//   xlstm-run init-random --config CONFIG.json --seed S --out DIR
//   xlstm-run tokenize   --tokenizer FILE --text "..." --json
//   xlstm-run detokenize --tokenizer FILE --ids 1,2,3 --json
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/usage.h"
#include "common/flag_names.h"
#include "tools/xlstm_run/commands.h"

namespace {

constexpr char kUsage[] =
    "xlstm-run <command> [flags]\n"
    "commands:\n"
    "  generate     generate tokens from --ids or --prompt\n"
    "  score        log-probabilities of a continuation given a context\n"
    "  embed        final hidden states (after the final norm) of --ids or --prompt\n"
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
      {"generate", xlstm::run::RunGenerate}, {"score", xlstm::run::RunScore},
      {"embed", xlstm::run::RunEmbed},       {"init-random", xlstm::run::RunInitRandom},
      {"tokenize", xlstm::run::RunTokenize}, {"detokenize", xlstm::run::RunDetokenize},
  };
  if (argc >= 2 && xlstm::cli::IsHelpArgument(argv[1])) {
    std::printf("usage: %s\n", kUsage);
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "%s\n", kUsage);
    return xlstm::cli::kUsageErrorExitCode;
  }
  const std::string_view name = argv[1];
  for (const Command& command : commands) {
    if (command.name != name) continue;
    // Parse the flags that follow the command name (dashed names normalized); argv[1] is
    // dropped so absl sees "xlstm-run --flag ...".
    const std::vector<std::string> positional = xlstm::cli::ParseFlags(argc, argv, 2);
    if (!positional.empty()) {
      std::fprintf(stderr, "xlstm-run %s: unexpected argument '%s'\n", argv[1],
                   positional[0].c_str());
      return 2;
    }
    return command.run();
  }
  std::fprintf(stderr, "xlstm-run: unknown command '%s'\n%s\n", argv[1], kUsage);
  return 2;
}
