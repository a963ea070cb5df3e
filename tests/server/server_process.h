// Helpers for end-to-end tests over loopback: a child xlstm-server on --port 0, a temporary
// directory per test process, and running the CLI tools.
#ifndef XLSTM_TESTS_SERVER_SERVER_PROCESS_H_
#define XLSTM_TESTS_SERVER_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace xlstm::testing {

inline const std::string kModel = XLSTM_TEST_DATA_DIR "/hf/default";
inline const std::string kTokenizerJson =
    XLSTM_TEST_DATA_DIR "/tokenizers/gpt-neox-20b/tokenizer.json";
inline const std::string kServer = XLSTM_BINARY_DIR "/server/xlstm-server";
inline const std::string kRun = XLSTM_BINARY_DIR "/tools/xlstm_run/xlstm-run";
inline const std::string kClient = XLSTM_BINARY_DIR "/client/xlstm-client";
inline const std::string kLoadgen = XLSTM_BINARY_DIR "/client/xlstm-loadgen";
inline const std::string kDemoConfig = XLSTM_SOURCE_DIR "/tools/configs/demo.json";

// Runs a shell command; returns its stdout. `exit_code` (optional) gets the exit status.
inline std::string RunCommand(const std::string& cmd, int* exit_code = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int status = p ? pclose(p) : -1;
  if (exit_code) *exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return out;
}

// Single-quotes `s` for /bin/sh.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A fresh directory under the GoogleTest temp dir, unique per process (ctest runs each test in
// its own process, in parallel), removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string pattern = ::testing::TempDir() + "/" + prefix + "_XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    EXPECT_FALSE(path_.empty()) << "mkdtemp " << pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child xlstm-server on 127.0.0.1 with --port 0 and --metrics-port 0; the constructor reads its
// stdout until the ready line (searched for anywhere in a line, so both --log-format text and
// json work). The destructor kills it (SIGKILL) if still running. `stderr_path` (optional)
// receives the server's stderr (its log lines); otherwise stderr is the test's.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra, const std::string& model = kModel,
                         const std::string& stderr_path = "") {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      if (!stderr_path.empty()) {
        FILE* err = std::fopen(stderr_path.c_str(), "w");
        if (err != nullptr) dup2(fileno(err), 2);
      }
      std::vector<std::string> args = {
          kServer, "--model", model, "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      // XLSTM_TEST_SERVER_ARGS (space-separated) runs the same tests against another backend,
      // e.g. "--backend cuda --weight-dtype float32" on a GPU machine.
      if (const char* env = std::getenv("XLSTM_TEST_SERVER_ARGS"); env != nullptr) {
        std::istringstream words(env);
        for (std::string w; words >> w;) args.push_back(w);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kServer.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
    char line[1024];
    std::regex ready("ready grpc_port=(\\d+) metrics_port=(-?\\d+)");
    while (fgets(line, sizeof line, out_)) {
      std::cmatch m;
      if (std::regex_search(line, m, ready)) {
        port_ = std::stoi(m[1]);
        metrics_port_ = std::stoi(m[2]);
        break;
      }
    }
    EXPECT_GT(port_, 0) << "server did not start";
    channel_ = grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
    stub_ = xlstm::v1::Inference::NewStub(channel_);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // SIGTERM and wait; returns the wait status.
  int Terminate() {
    kill(pid_, SIGTERM);
    return WaitExit();
  }
  void Signal(int sig) { kill(pid_, sig); }
  int WaitExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  xlstm::v1::Inference::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  // The /metrics page (HTTP response, headers included).
  std::string Scrape() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(metrics_port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return "";
    }
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    std::string out;
    char buf[8192];
    ssize_t n;
    // Stop at Content-Length: the server may keep the connection open.
    size_t want = std::string::npos;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      out.append(buf, n);
      const size_t head = out.find("\r\n\r\n");
      if (want == std::string::npos && head != std::string::npos) {
        std::smatch m;
        std::string headers = out.substr(0, head);
        if (std::regex_search(headers, m, std::regex("[Cc]ontent-[Ll]ength: *(\\d+)"))) {
          want = head + 4 + std::stoul(m[1]);
        }
      }
      if (want != std::string::npos && out.size() >= want) break;
    }
    close(fd);
    return out;
  }
  // The value of a sample line `name{labels} value` (labels as written), -1 when absent.
  double Metric(const std::string& name_and_labels) {
    const std::string text = Scrape();
    size_t pos = 0;
    while ((pos = text.find(name_and_labels + " ", pos)) != std::string::npos) {
      if (pos == 0 || text[pos - 1] == '\n') {
        return std::stod(text.substr(pos + name_and_labels.size() + 1));
      }
      ++pos;
    }
    return -1;
  }
  bool WaitMetric(const std::string& name, double value) {
    for (int i = 0; i < 300; ++i) {
      if (Metric(name) == value) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<xlstm::v1::Inference::Stub> stub_;
};

}  // namespace xlstm::testing

#endif  // XLSTM_TESTS_SERVER_SERVER_PROCESS_H_
