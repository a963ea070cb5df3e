// The four programs read their command lines the same way (common/command_line.h): --help prints
// the usage and the program's own flags, without build paths, and exits 0; dashed names work;
// every usage mistake exits 2 with a message naming the flag; xlstm-client's --stop takes each
// value literally (a comma can be a stop string).
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

struct HelpCase {
  std::string command;
  std::vector<std::string> flags;
};

std::vector<HelpCase> HelpCases() {
  return {
      {kServer + " --help",
       {"--model", "--num-slots", "--drain-grace-seconds", "--backend auto|cpu|cuda",
        "--log-format text|json", "--log-level", "--stats-interval-seconds"}},
      {kClient + " --help", {"--target", "--max-new-tokens", "--stop"}},
      {kLoadgen + " --help", {"--concurrency", "--duration-s", "--json"}},
      {kRun + " generate --help", {"--model", "--max-new-tokens", "--top-p"}},
  };
}

TEST(CliHelpTest, HelpListsTheProgramsOwnFlagsAndExitsZero) {
  // Source files as absl names them: "Flags from tmp/build/server/main.cc".
  const std::regex source_path("[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*\\.(cc|h)\\b");
  for (const HelpCase& c : HelpCases()) {
    int code = -1;
    const std::string out = RunCommand(c.command + " 2>&1", &code);
    EXPECT_EQ(code, 0) << c.command << ":\n" << out;
    EXPECT_EQ(out.rfind("usage: ", 0), 0u) << c.command << ":\n" << out;
    EXPECT_EQ(out.find("Flags from"), std::string::npos) << c.command << ":\n" << out;
    EXPECT_FALSE(std::regex_search(out, source_path)) << c.command << ":\n" << out;
    for (const std::string& flag : c.flags) {
      EXPECT_NE(out.find("\n  " + flag), std::string::npos) << c.command << ": " << flag;
    }
    // abseil's own flags stay out.
    EXPECT_EQ(out.find("--flagfile"), std::string::npos) << c.command;
  }
  int code = -1;
  const std::string out = RunCommand(kRun + " --help 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("generate"), std::string::npos) << out;
}

// Every "  --flag ..." entry of a --help page is followed by a non-empty help line.
TEST(CliHelpTest, EveryFlagHasHelp) {
  for (const HelpCase& c : HelpCases()) {
    std::istringstream lines(RunCommand(c.command + " 2>&1"));
    std::vector<std::string> all;
    for (std::string line; std::getline(lines, line);) all.push_back(line);
    int entries = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].rfind("  --", 0) != 0) continue;
      ++entries;
      ASSERT_LT(i + 1, all.size()) << c.command << ": " << all[i];
      const std::string& help = all[i + 1];
      EXPECT_TRUE(help.rfind("      ", 0) == 0 && help.size() > 6 && help[6] != ' ' &&
                  help[6] != '(')
          << c.command << ": " << all[i] << " has no help";
    }
    EXPECT_GT(entries, 3) << c.command;
  }
}

TEST(CliHelpTest, EveryUsageMistakeExits2NamingTheFlag) {
  const std::string model = " --model " + kModel;
  struct Case {
    std::string command;
    std::string message;
  };
  const std::vector<Case> cases = {
      // xlstm-server: its option table.
      {kServer + model + " --port abc", "--port: 'abc' is not an integer"},
      {kServer + model + " --port 70000", "--port: 70000 is outside [0, 65535]"},
      {kServer + model + " --backend gpu", "--backend: 'gpu' is not one of auto, cpu, cuda"},
      {kServer + model + " --weight-dtype fp8", "--weight-dtype: 'fp8' is not one of"},
      {kServer + model + " --log-format xml", "--log-format: 'xml' is not one of text, json"},
      {kServer + model + " --num-slots 0", "--num-slots: 0 is outside [1, "},
      {kServer + model + " --drain-grace-seconds -1", "--drain-grace-seconds: -1 is outside"},
      {kServer + model + " --no-such-flag 1", "--no-such-flag: unknown flag"},
      {kServer + model + " --port", "--port: missing value"},
      {kServer + " --port 0", "--model: is required"},
      {kServer + model + " extra", "unexpected argument 'extra'"},
      {kServer + model + " --default-max-new-tokens 9 --max-new-tokens-limit 8",
       "--default-max-new-tokens: 9 is above --max-new-tokens-limit 8"},
      // xlstm-client, xlstm-loadgen, xlstm-run: absl flags through common/flag_names.h.
      {kClient + " --top-k abc generate", "--top-k: 'abc' is not a valid value"},
      {kClient + " --no-such-flag generate", "--no-such-flag: unknown flag"},
      {kClient + " --target", "--target: missing value"},
      {kClient + " frobnicate", "unknown command 'frobnicate'"},
      {kClient + " --ids x generate", "--ids: expected comma-separated integers"},
      {kLoadgen + " --concurrency many", "--concurrency: 'many' is not a valid value"},
      {kLoadgen + " --concurrency 0", "--concurrency: 0 is outside [1, "},
      {kLoadgen + " --bogus", "--bogus: unknown flag"},
      {kRun + " generate --max-new-tokens abc", "--max-new-tokens: 'abc' is not a valid value"},
      {kRun + " generate --max-new-tokens -1 --ids 1", "--max-new-tokens: -1 is outside"},
      {kRun + " generate --bogus", "--bogus: unknown flag"},
      {kRun + " frobnicate", "unknown command 'frobnicate'"},
  };
  for (const Case& c : cases) {
    int code = -1;
    // A server that accepted its options would run until stopped: `timeout` ends it (exit 124).
    const std::string out = RunCommand("timeout 20 " + c.command + " 2>&1", &code);
    EXPECT_EQ(code, 2) << c.command << ":\n" << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.command << ":\n" << out;
  }
}

TEST(CliHelpTest, DashedNamesAndNegatedBooleansReachEveryBinary) {
  int code = -1;
  // An out-of-range value proves the dashed name was recognized (the check names it).
  std::string out = RunCommand(kLoadgen + " --max-new-tokens=0 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--max-new-tokens: 0 must be >= 1"), std::string::npos) << out;
  out = RunCommand(kServer + " --model x --num_slots 0 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--num-slots"), std::string::npos) << out;
  out = RunCommand(kRun + " generate --max-new-tokens -1 --ids 1 --no-greedy 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--max-new-tokens: -1 is outside"), std::string::npos) << out;
  out = RunCommand(kClient + " --target 127.0.0.1:1 --no-stream --ids x generate 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--ids: expected comma-separated integers"), std::string::npos) << out;
}

TEST(CliHelpTest, StopStringsAreRepeatableAndTakenLiterally) {
  // Stop strings need a tokenizer: a random-weight model with one, served with room for exactly
  // one stop string, so the server's answer tells how many strings the client sent.
  TempDir dir("cli_stop");
  const std::string model = dir.path() + "/model";
  int code = -1;
  RunCommand(kRun + " init-random --config " + kDemoConfig + " --seed 0 --dtype bfloat16 " +
                 "--tokenizer " + kTokenizerJson + " --out " + model + " 2>&1",
             &code);
  ASSERT_EQ(code, 0) << "init-random failed";
  ServerProcess server({"--max-stop-strings", "1"}, model);
  ASSERT_GT(server.port(), 0);
  const std::string generate = kClient + " --target " + server.target() +
                               " generate --prompt 'a, b, c' --max-new-tokens 4 --greedy";
  // One stop string each: a comma, and a string with a comma inside (absl's list flag made them
  // two and two).
  for (const std::string& stop : {std::string(","), std::string("a,b")}) {
    const std::string out = RunCommand(generate + " --stop " + ShellQuote(stop) + " 2>&1", &code);
    EXPECT_EQ(code, 0) << stop << ":\n" << out;
  }
  // Given twice: two stop strings, one more than the server allows.
  const std::string out = RunCommand(generate + " --stop , --stop . 2>&1", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("stop"), std::string::npos) << out;
}

}  // namespace
}  // namespace xlstm::testing
