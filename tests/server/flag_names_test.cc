// tools/common/flag_names.h: dashed flag names for absl flags (xlstm-run, xlstm-server,
// xlstm-client, xlstm-loadgen).
#include "tools/common/flag_names.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(int32_t, max_new_tokens, 16, "");
ABSL_FLAG(std::string, prompt, "", "");
ABSL_FLAG(bool, greedy, true, "");
ABSL_FLAG(bool, ignore_eos, false, "");

namespace {

using Args = std::vector<std::string>;
using xlstm::cli::NormalizeFlagNames;

TEST(FlagNamesTest, DashesInKnownFlagNamesBecomeUnderscores) {
  EXPECT_EQ(NormalizeFlagNames({"--max-new-tokens", "5"}), (Args{"--max_new_tokens", "5"}));
  EXPECT_EQ(NormalizeFlagNames({"--max-new-tokens=5"}), (Args{"--max_new_tokens=5"}));
  EXPECT_EQ(NormalizeFlagNames({"--max_new_tokens=5"}), (Args{"--max_new_tokens=5"}));
  EXPECT_EQ(NormalizeFlagNames({"--ignore-eos"}), (Args{"--ignore_eos"}));
  EXPECT_EQ(NormalizeFlagNames({"--ignore-eos=false"}), (Args{"--ignore_eos=false"}));
}

TEST(FlagNamesTest, ValuesAreNeverRewritten) {
  // The value of a non-boolean flag, in the next argument or after '=', stays as written even
  // when it looks like a flag.
  EXPECT_EQ(NormalizeFlagNames({"--prompt", "--max-new-tokens", "--max-new-tokens", "3"}),
            (Args{"--prompt", "--max-new-tokens", "--max_new_tokens", "3"}));
  EXPECT_EQ(NormalizeFlagNames({"--prompt=--ignore-eos"}), (Args{"--prompt=--ignore-eos"}));
  // A boolean flag takes no separate value: the next argument is a flag again.
  EXPECT_EQ(NormalizeFlagNames({"--greedy", "--max-new-tokens", "2"}),
            (Args{"--greedy", "--max_new_tokens", "2"}));
}

TEST(FlagNamesTest, NegatedBooleansInEverySpelling) {
  EXPECT_EQ(NormalizeFlagNames({"--no-greedy"}), (Args{"--nogreedy"}));
  EXPECT_EQ(NormalizeFlagNames({"--no_greedy"}), (Args{"--nogreedy"}));
  EXPECT_EQ(NormalizeFlagNames({"--nogreedy"}), (Args{"--nogreedy"}));
  EXPECT_EQ(NormalizeFlagNames({"--no-ignore-eos"}), (Args{"--noignore_eos"}));
  // Only booleans negate: absl then reports --no-prompt as unknown, as written.
  EXPECT_EQ(NormalizeFlagNames({"--no-prompt"}), (Args{"--no-prompt"}));
}

TEST(FlagNamesTest, UnknownFlagsPositionalsAndTheTerminatorPassThrough) {
  EXPECT_EQ(NormalizeFlagNames({"--no-such-flag", "x", "-", "--", "-q"}),
            (Args{"--no-such-flag", "x", "-", "--", "-q"}));
  EXPECT_EQ(NormalizeFlagNames({"generate", "--", "--max-new-tokens"}),
            (Args{"generate", "--", "--max-new-tokens"}));
  EXPECT_EQ(NormalizeFlagNames({}), Args{});
}

TEST(FlagNamesTest, ParseFlagsSetsValuesAndReturnsPositionals) {
  std::vector<std::string> storage = {"prog",        "sub",          "--max-new-tokens",
                                      "7",           "--prompt",     "--no-greedy",
                                      "--no-greedy", "--ignore-eos", "pos"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  const std::vector<std::string> positional =
      xlstm::cli::ParseFlags(static_cast<int>(argv.size()), argv.data(), 2);
  EXPECT_EQ(positional, (Args{"pos"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_max_new_tokens), 7);
  EXPECT_EQ(absl::GetFlag(FLAGS_prompt), "--no-greedy");
  EXPECT_FALSE(absl::GetFlag(FLAGS_greedy));
  EXPECT_TRUE(absl::GetFlag(FLAGS_ignore_eos));
}

}  // namespace
