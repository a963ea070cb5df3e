// common/command_line.h, common/flag_names.h and common/option_table.h: the command-line grammar
// shared by xlstm-server, xlstm-client, xlstm-loadgen and xlstm-run.
#include "common/flag_names.h"

#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/option_table.h"
#include "gtest/gtest.h"

ABSL_FLAG(int32_t, max_new_tokens, 16, "tokens to generate");
ABSL_FLAG(std::string, prompt, "", "prompt text");
ABSL_FLAG(bool, greedy, true, "greedy decoding");
ABSL_FLAG(bool, ignore_eos, false, "ignore EOS");
ABSL_FLAG(std::string, stop, "", "a stop string (repeatable)");

namespace xlstm::cli {
namespace {

using Args = std::vector<std::string>;

// Scans `args` against a fixed set of flags and records every assignment as "name=value".
struct Scan {
  Args assignments;
  Args positional;
  bool help = false;
  std::string error;
};
Scan ScanFor(const Args& args) {
  const std::map<std::string, FlagKind> kinds = {{"max_new_tokens", FlagKind::kTakesValue},
                                                 {"prompt", FlagKind::kTakesValue},
                                                 {"greedy", FlagKind::kBoolean},
                                                 {"ignore_eos", FlagKind::kBoolean}};
  Scan scan;
  absl::StatusOr<bool> help = ScanArguments(
      args,
      [&](const std::string& name) {
        auto it = kinds.find(name);
        return it == kinds.end() ? FlagKind::kUnknown : it->second;
      },
      [&](const std::string& name, absl::string_view value) {
        scan.assignments.push_back(absl::StrCat(name, "=", value));
        return absl::OkStatus();
      },
      &scan.positional);
  if (help.ok()) {
    scan.help = *help;
  } else {
    scan.error = std::string(help.status().message());
  }
  return scan;
}

TEST(CommandLineTest, DashesAndUnderscoresNameTheSameFlag) {
  EXPECT_EQ(ScanFor({"--max-new-tokens", "5"}).assignments, (Args{"max_new_tokens=5"}));
  EXPECT_EQ(ScanFor({"--max-new-tokens=5"}).assignments, (Args{"max_new_tokens=5"}));
  EXPECT_EQ(ScanFor({"--max_new_tokens=5"}).assignments, (Args{"max_new_tokens=5"}));
  EXPECT_EQ(ScanFor({"--ignore-eos"}).assignments, (Args{"ignore_eos=true"}));
  EXPECT_EQ(ScanFor({"--ignore-eos=false"}).assignments, (Args{"ignore_eos=false"}));
}

TEST(CommandLineTest, ValuesAreTakenAsWritten) {
  // The value of a flag, in the next argument or after '=', stays as written even when it looks
  // like a flag or holds commas.
  EXPECT_EQ(ScanFor({"--prompt", "--max-new-tokens", "--max-new-tokens", "3"}).assignments,
            (Args{"prompt=--max-new-tokens", "max_new_tokens=3"}));
  EXPECT_EQ(ScanFor({"--prompt=a,b"}).assignments, (Args{"prompt=a,b"}));
  // A boolean takes no separate value: the next argument is a flag again.
  EXPECT_EQ(ScanFor({"--greedy", "--max-new-tokens", "2"}).assignments,
            (Args{"greedy=true", "max_new_tokens=2"}));
}

TEST(CommandLineTest, NegatedBooleansInEverySpelling) {
  for (const char* arg : {"--no-greedy", "--no_greedy", "--nogreedy"}) {
    EXPECT_EQ(ScanFor({arg}).assignments, (Args{"greedy=false"})) << arg;
  }
  EXPECT_EQ(ScanFor({"--no-ignore-eos"}).assignments, (Args{"ignore_eos=false"}));
  // Only booleans negate.
  EXPECT_EQ(ScanFor({"--no-prompt"}).error, "--no-prompt: unknown flag");
  EXPECT_EQ(ScanFor({"--no-greedy=1"}).error,
            "--no-greedy: a negated flag takes no value (write --greedy=1)");
}

TEST(CommandLineTest, MistakesNameTheFlag) {
  EXPECT_EQ(ScanFor({"--no-such-flag", "x"}).error, "--no-such-flag: unknown flag");
  EXPECT_EQ(ScanFor({"--max-new-tokens"}).error, "--max-new-tokens: missing value");
}

TEST(CommandLineTest, PositionalsTheTerminatorAndHelp) {
  const Scan scan = ScanFor({"generate", "-", "--", "--max-new-tokens", "-q"});
  EXPECT_EQ(scan.positional, (Args{"generate", "-", "--max-new-tokens", "-q"}));
  EXPECT_TRUE(scan.assignments.empty());
  EXPECT_TRUE(ScanFor({"--prompt", "x", "--help"}).help);
  EXPECT_TRUE(ScanFor({"-h"}).help);
  EXPECT_FALSE(ScanFor({}).help);
}

TEST(FlagNamesTest, ParseFlagsSetsAbslFlagsAndCollectsRepeatableOnes) {
  std::vector<std::string> storage = {
      "prog", "sub",         "--max-new-tokens", "7",   "--prompt",     "--no-greedy", "--stop",
      ",",    "--no-greedy", "--stop",           "a,b", "--ignore-eos", "pos"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  std::vector<std::string> stops;
  ParseFlagsOptions options;
  options.repeatable["stop"] = &stops;
  const std::vector<std::string> positional =
      ParseFlags(static_cast<int>(argv.size()), argv.data(), 2, options);
  EXPECT_EQ(positional, (Args{"pos"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_max_new_tokens), 7);
  EXPECT_EQ(absl::GetFlag(FLAGS_prompt), "--no-greedy");
  EXPECT_FALSE(absl::GetFlag(FLAGS_greedy));
  EXPECT_TRUE(absl::GetFlag(FLAGS_ignore_eos));
  EXPECT_EQ(stops, (Args{",", "a,b"}));
}

void ParseAndExit(Args args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  ParseFlags(static_cast<int>(argv.size()), argv.data(), 1);
  std::exit(0);
}

TEST(FlagNamesDeathTest, UsageMistakesExit2NamingTheFlag) {
  EXPECT_EXIT(ParseAndExit({"--max-new-tokens", "abc"}), ::testing::ExitedWithCode(2),
              "--max-new-tokens: 'abc' is not a valid value");
  EXPECT_EXIT(ParseAndExit({"--bogus"}), ::testing::ExitedWithCode(2), "--bogus: unknown flag");
  // abseil's own flags are not ours to take.
  EXPECT_EXIT(ParseAndExit({"--flagfile=x"}), ::testing::ExitedWithCode(2),
              "--flagfile: unknown flag");
}

TEST(FlagNamesTest, HelpListsOwnFlagsWithoutPaths) {
  const std::string help = FlagsHelp();
  EXPECT_NE(help.find("  --max-new-tokens VALUE\n      tokens to generate\n      (default: 16)"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("--greedy"), std::string::npos);
  EXPECT_EQ(help.find("flagfile"), std::string::npos);
  EXPECT_EQ(help.find('/'), std::string::npos) << help;
}

enum class Color { kRed, kGreen };
inline constexpr std::array<ChoiceName<Color>, 2> kColorNames = {{
    {"red", Color::kRed},
    {"green", Color::kGreen},
}};

struct TestOptions {
  std::string name;
  int32_t count = 3;
  double ratio = 0.5;
  Color color = Color::kRed;
};

OptionTable<TestOptions> TestTable() {
  OptionTable<TestOptions> t("prog", "prog --name N");
  t.Group("Things (TestOptions)")
      .Text("name", &TestOptions::name, "a name", "NAME", /*required=*/true)
      .Integer("count", &TestOptions::count, 1, 10, "how many")
      .Real("ratio", &TestOptions::ratio, 0, 1, "a fraction")
      .Choice("color", &TestOptions::color, kColorNames, "a color");
  t.Check([](const TestOptions& o) {
    return o.count > 5 && o.color == Color::kGreen
               ? absl::InvalidArgumentError("--count: at most 5 when --color green")
               : absl::OkStatus();
  });
  return t;
}

std::string ParseError(const Args& args) {
  TestOptions o;
  absl::StatusOr<OptionTable<TestOptions>::Parsed> parsed = TestTable().Parse(args, &o);
  return parsed.ok() ? "" : std::string(parsed.status().message());
}

TEST(OptionTableTest, ParsesEveryKindIntoItsField) {
  TestOptions o;
  ASSERT_TRUE(TestTable()
                  .Parse({"--name", "x", "--count=7", "--ratio", "0.25", "--color", "green"}, &o)
                  .ok() == false);  // the cross-option check
  o = TestOptions{};
  auto parsed = TestTable().Parse(
      {"--name", "x", "--count=4", "--ratio", "0.25", "--color", "green", "extra"}, &o);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(o.name, "x");
  EXPECT_EQ(o.count, 4);
  EXPECT_EQ(o.ratio, 0.25);
  EXPECT_EQ(o.color, Color::kGreen);
  EXPECT_EQ(parsed->positional, (Args{"extra"}));
}

TEST(OptionTableTest, EveryMistakeNamesTheFlag) {
  EXPECT_EQ(ParseError({}), "--name: is required");
  EXPECT_EQ(ParseError({"--name", "x", "--count", "abc"}), "--count: 'abc' is not an integer");
  EXPECT_EQ(ParseError({"--name", "x", "--count", "11"}), "--count: 11 is outside [1, 10]");
  EXPECT_EQ(ParseError({"--name", "x", "--ratio", "nan"}), "--ratio: 'nan' is not a number");
  EXPECT_EQ(ParseError({"--name", "x", "--ratio", "2"}), "--ratio: 2 is outside [0, 1]");
  EXPECT_EQ(ParseError({"--name", "x", "--color", "blue"}),
            "--color: 'blue' is not one of red, green");
  EXPECT_EQ(ParseError({"--name", "x", "--colour", "red"}), "--colour: unknown flag");
  EXPECT_EQ(ParseError({"--name", "x", "--count", "6", "--color", "green"}),
            "--count: at most 5 when --color green");
}

TEST(OptionTableTest, HelpAndDescribeComeFromTheTable) {
  const OptionTable<TestOptions> table = TestTable();
  const std::string help = table.Help();
  EXPECT_NE(help.find("usage: prog --name N\n\nThings (TestOptions):\n"), std::string::npos)
      << help;
  EXPECT_NE(help.find("  --count N\n      how many\n      (default: 3; range [1, 10])\n"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("  --color red|green\n      a color\n      (default: red)\n"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("  --name NAME\n      a name\n      (required)\n"), std::string::npos);
  TestOptions o;
  o.name = "n";
  o.color = Color::kGreen;
  EXPECT_EQ(table.Describe(o),
            "  Things (TestOptions):\n    name   n\n    count  3\n    ratio  0.5\n"
            "    color  green\n");
  EXPECT_EQ(table.Values(o).back(), (std::pair<std::string, std::string>{"color", "green"}));
}

}  // namespace
}  // namespace xlstm::cli
