// Every binary's --help lists its own flags (through tools/common/flag_names.h; absl's default
// filter matched none of them), and dashed flag names work in all of them.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/server_process.h"

namespace {

using xlstm::testing::RunCommand;

TEST(CliHelpTest, HelpListsTheProgramsOwnFlags) {
  struct Case {
    std::string command;
    std::vector<std::string> flags;
  };
  const std::vector<Case> cases = {
      {xlstm::testing::kServer + " --help", {"--model", "--num_slots", "--drain_grace_seconds"}},
      {xlstm::testing::kClient + " --help", {"--target", "--max_new_tokens", "--stop"}},
      {xlstm::testing::kLoadgen + " --help", {"--concurrency", "--duration_s", "--json"}},
      {xlstm::testing::kRun + " generate --help", {"--model", "--max_new_tokens", "--top_p"}},
  };
  for (const Case& c : cases) {
    const std::string out = RunCommand(c.command + " 2>&1");
    EXPECT_EQ(out.find("No flags matched"), std::string::npos) << c.command << ":\n" << out;
    for (const std::string& flag : c.flags) {
      EXPECT_NE(out.find(flag + " ("), std::string::npos) << c.command << ": " << flag;
    }
    // abseil's own flags stay out of --help (they are in --helpfull).
    EXPECT_EQ(out.find("--flagfile"), std::string::npos) << c.command;
  }
}

TEST(CliHelpTest, DashedNamesAndNegatedBooleansReachEveryBinary) {
  int code = -1;
  // An out-of-range value proves the dashed name was recognized (the check names it).
  std::string out = RunCommand(xlstm::testing::kLoadgen + " --max-new-tokens=0 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--max-new-tokens: 0 must be >= 1"), std::string::npos) << out;
  out = RunCommand(xlstm::testing::kServer + " --model x --num-slots 0 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--num-slots"), std::string::npos) << out;
  out = RunCommand(xlstm::testing::kRun + " generate --max-new-tokens -1 --ids 1 --no-greedy 2>&1",
                   &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--max-new-tokens: -1 is outside"), std::string::npos) << out;
  out = RunCommand(
      xlstm::testing::kClient + " --target 127.0.0.1:1 --no-stream --ids x generate 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--ids: expected comma-separated integers"), std::string::npos) << out;
}

}  // namespace
