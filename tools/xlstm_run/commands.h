// The subcommands of xlstm-run. Each runs after flags are parsed and returns the process exit
// code (0 ok, 1 runtime error, 2 usage error), having printed any error to stderr.
#ifndef XLSTM_TOOLS_XLSTM_RUN_COMMANDS_H_
#define XLSTM_TOOLS_XLSTM_RUN_COMMANDS_H_

namespace xlstm::run {

int RunGenerate();
int RunScore();
int RunEmbed();
int RunInitRandom();
int RunTokenize();
int RunDetokenize();

}  // namespace xlstm::run

#endif  // XLSTM_TOOLS_XLSTM_RUN_COMMANDS_H_
