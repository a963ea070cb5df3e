// End to end: the built xlstm-run binary's tokenize / detokenize commands, checked against the HF
// reference fixtures.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/reference_fixture.h"

namespace xlstm::tokenizer {
namespace {

using ::testing::HasSubstr;
using testing::Printable;
using testing::Reference;
using testing::TestDataPath;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs xlstm-run with `args` (no shell, so any text passes through unquoted).
Result RunXlstm(const std::vector<std::string>& args) {
  const std::string binary = std::string(XLSTM_BINARY_DIR) + "/tools/xlstm_run/xlstm-run";
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  Result result;
  // Outputs here are small; read stdout fully, then stderr.
  for (auto [fd, target] :
       {std::pair{out_pipe[0], &result.out}, std::pair{err_pipe[0], &result.err}}) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0)
      target->append(buffer, static_cast<size_t>(n));
    close(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string NeoXPath() { return TestDataPath("tokenizers/gpt-neox-20b/tokenizer.json"); }

std::string JoinIds(const std::vector<int32_t>& ids) {
  std::string joined;
  // Appended piece by piece: `const char* + std::string&&` inserts at the front, which GCC 12
  // misreads as overlapping memcpy in Release builds (-Werror=restrict).
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) joined += ',';
    joined += std::to_string(ids[i]);
  }
  return joined;
}

// Fixture cases that can travel as a command-line argument (no NUL byte).
std::vector<nlohmann::json> CliCases() {
  std::vector<nlohmann::json> cases;
  for (const auto& c : Reference()["encode"]) {
    if (c["tokenizer"] != "gpt-neox-20b") continue;
    if (c["text"].get<std::string>().find('\0') != std::string::npos) continue;
    const std::string name = c["name"].get<std::string>();
    if (name == "empty" || name == "special_middle" || name == "emoji_zwj" || name == "crlf" ||
        name == "nfc_cafe" || name == "spaces_mid_7" || name == "code_0" || name == "prose" ||
        name == "contractions_mixed") {
      cases.push_back(c);
    }
  }
  return cases;
}

TEST(XlstmRunTokenizeTest, TokenizeJsonMatchesHf) {
  const auto cases = CliCases();
  ASSERT_EQ(cases.size(), 9u);
  for (const auto& c : cases) {
    const Result r = RunXlstm(
        {"tokenize", "--tokenizer", NeoXPath(), "--text", c["text"].get<std::string>(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << c["name"] << ": " << r.err;
    const nlohmann::json out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["ids"].get<std::vector<int32_t>>(), c["ids"].get<std::vector<int32_t>>())
        << c["name"];
  }
}

TEST(XlstmRunTokenizeTest, DetokenizeJsonMatchesHf) {
  for (const auto& c : CliCases()) {
    for (const bool skip : {false, true}) {
      std::vector<std::string> args = {"detokenize",
                                       "--tokenizer",
                                       NeoXPath(),
                                       "--ids",
                                       JoinIds(c["ids"].get<std::vector<int32_t>>()),
                                       "--json"};
      if (skip) args.push_back("--skip_special_tokens");
      const Result r = RunXlstm(args);
      ASSERT_EQ(r.exit_code, 0) << c["name"] << ": " << r.err;
      const nlohmann::json out = nlohmann::json::parse(r.out);
      EXPECT_EQ(out["text"].get<std::string>(),
                c[skip ? "decoded_skip" : "decoded"].get<std::string>())
          << c["name"];
    }
  }
}

TEST(XlstmRunTokenizeTest, DetokenizeOfSplitCharacterMatchesHf) {
  for (const auto& c : Reference()["decode"]) {
    if (c["tokenizer"] != "gpt-neox-20b" || c["name"] != "raw_e282") continue;
    const Result r = RunXlstm({"detokenize", "--tokenizer", NeoXPath(), "--ids",
                               JoinIds(c["ids"].get<std::vector<int32_t>>()), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["text"].get<std::string>(),
              c["text"].get<std::string>());
    return;
  }
  FAIL() << "fixture case raw_e282 missing";
}

TEST(XlstmRunTokenizeTest, AcceptsModelDirectoryAndPrintsHumanReadable) {
  const Result r = RunXlstm(
      {"tokenize", "--tokenizer", TestDataPath("tokenizers/neox-variant"), "--text", "hello"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tokens: "));
  const Result d = RunXlstm({"detokenize", "--tokenizer", NeoXPath(), "--ids", "12092, 1533"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, *testing::NeoX().Decode(std::vector<int32_t>{12092, 1533}, false) + "\n");
}

TEST(XlstmRunTokenizeTest, Errors) {
  Result r = RunXlstm({"tokenize", "--text", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--tokenizer"));
  r = RunXlstm({"detokenize", "--tokenizer", NeoXPath(), "--ids", "1,x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--ids"));
  r = RunXlstm({"detokenize", "--tokenizer", NeoXPath(), "--ids", "12092,999999", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("999999"));
  EXPECT_EQ(r.out, "");
  r = RunXlstm({"tokenize", "--tokenizer", NeoXPath(), "--text", "bad \xff byte", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("offset 4"));
  r = RunXlstm({"tokenize", "--tokenizer", "/nonexistent/tokenizer.json", "--text", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/tokenizer.json"));
}

}  // namespace
}  // namespace xlstm::tokenizer
