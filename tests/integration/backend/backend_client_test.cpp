// wsgate-backend end to end with a Beast WebSocket client: the staging
// failure (strict), its fix (fallback), the generic 1011 path
// (handler.throw) and shutdown (1001). The binary's path is argv[1].
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

extern char** environ;

namespace {

std::string g_binary;
const std::string kSecret = "beast-client-test-secret-0123456789abcdef";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The backend as a child process on free ports.
class BackendProcess {
 public:
  explicit BackendProcess(std::vector<std::string> extra) {
    char tmpl[] = "/tmp/wsgate-beast-it-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "secret") << kSecret << "\n";
    std::vector<std::string> args = {g_binary,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--admin",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     (dir_ / "ports.json").string(),
                                     "--jwt-secret-file",
                                     (dir_ / "secret").string(),
                                     "--agent-step-delay-ms",
                                     "1",
                                     "--drain-timeout",
                                     "5"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = spawn(args, (dir_ / "backend.log").string());
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!std::filesystem::exists(dir_ / "ports.json")) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("backend exited: " + slurp(dir_ / "backend.log"));
      }
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("backend did not start");
      std::this_thread::sleep_for(20ms);
    }
    auto ports = json::parse(slurp(dir_ / "ports.json"));
    port_ = ports["listen"].get<unsigned short>();
    admin_port_ = ports["admin"].get<unsigned short>();
  }

  ~BackendProcess() {
    if (pid_ > 0) stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // SIGTERM and wait; returns the exit status (-1 when it had to be killed).
  int stop(std::chrono::seconds timeout = 20s) {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return exit_status_ = -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    return exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  unsigned short port() const { return port_; }
  std::string log() const { return slurp(dir_ / "backend.log"); }

  std::string token(const std::string& sub, const std::string& thread_id = "") const {
    std::vector<std::string> args = {
        g_binary, "token", "--sub", sub, "--jwt-secret-file", (dir_ / "secret").string()};
    if (!thread_id.empty()) args.insert(args.end(), {"--thread-id", thread_id});
    auto out = dir_ / "token.txt";
    pid_t pid = spawn(args, "/dev/null", out.string());
    int status = 0;
    waitpid(pid, &status, 0);
    auto text = slurp(out);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }

  // GET on the admin port: {status, body}.
  std::pair<unsigned, std::string> admin_get(const std::string& target) const {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(10s);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), admin_port_));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {res.result_int(), res.body()};
  }

  double metric(const std::string& series) const {
    std::istringstream lines(admin_get("/metrics").second);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
  }

 private:
  static pid_t spawn(const std::vector<std::string>& args, const std::string& err,
                     const std::string& out = "/dev/null") {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0].c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
    return pid;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
  unsigned short port_ = 0;
  unsigned short admin_port_ = 0;
};

// A synchronous Beast client with a deadline on every operation.
class Client {
 public:
  Client(unsigned short port, const std::string& token, const std::string& cid,
         const std::string& target = "/ws")
      : ws_(ioc_) {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.expires_after(15s);
    tcp_layer.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
      req.set(http::field::authorization, "Bearer " + token);
      if (!cid.empty()) req.set("X-Correlation-ID", cid);
    }));
    ws_.handshake(response_, "127.0.0.1", target);
  }

  json recv() {
    beast::get_lowest_layer(ws_).expires_after(15s);
    beast::flat_buffer buffer;
    ws_.read(buffer);
    return json::parse(beast::buffers_to_string(buffer.data()));
  }
  void send(const json& j) {
    beast::get_lowest_layer(ws_).expires_after(15s);
    ws_.text(true);
    ws_.write(net::buffer(j.dump()));
  }
  // Reads until the server closes; returns its close reason.
  websocket::close_reason await_close() {
    beast::get_lowest_layer(ws_).expires_after(15s);
    beast::flat_buffer buffer;
    beast::error_code ec;
    while (!ec) ws_.read(buffer, ec);
    EXPECT_EQ(ec, websocket::error::closed) << ec.message();
    return ws_.reason();
  }
  void close() { ws_.close(websocket::close_code::normal); }
  const websocket::response_type& response() const { return response_; }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  websocket::response_type response_;
};

json trace_of(const BackendProcess& b, const std::string& cid) {
  auto [status, body] = b.admin_get("/debug/traces/" + cid);
  EXPECT_EQ(status, 200u) << body;
  return json::parse(body);
}

const json* first_error(const json& trace) {
  for (const auto& s : trace["stages"])
    if (s["outcome"] == "error") return &s;
  return nullptr;
}

}  // namespace

TEST(BackendBeastClient, StrictPolicyReproducesTheStagingFailure) {
  BackendProcess backend({"--context-policy", "strict"});
  {
    Client c(backend.port(), backend.token("staging-e2e-user-001"), "beast-strict-0001");
    EXPECT_EQ(c.response()["X-Correlation-ID"], "beast-strict-0001");
    auto err = c.recv();
    EXPECT_EQ(err["type"], "error");
    EXPECT_EQ(err["error"]["code"], "FACTORY_INIT_FAILED");
    auto reason = c.await_close();
    EXPECT_EQ(reason.code, 1011);
    EXPECT_EQ(std::string(reason.reason.data(), reason.reason.size()),
              "Factory SSOT validation failed");
  }
  auto trace = trace_of(backend, "beast-strict-0001");
  ASSERT_NE(first_error(trace), nullptr);
  EXPECT_EQ((*first_error(trace))["stage"], "context.validate");
  EXPECT_EQ(trace["missing_attributes"], json::array({"thread_id"}));
  EXPECT_EQ(backend.metric("wsgate_backend_closes_total{code=\"1011\"}"), 1);
  EXPECT_EQ(backend.stop(), 0) << backend.log();
}

TEST(BackendBeastClient, FallbackPolicyServesAndCounts) {
  BackendProcess backend({"--context-policy", "fallback"});
  {
    Client c(backend.port(), backend.token("staging-e2e-user-001"), "beast-fallback-01");
    auto hello = c.recv();
    EXPECT_EQ(hello["type"], "connection_established");
    EXPECT_EQ(hello["fallback_attributes"], json::array({"thread_id"}));
    c.send({{"type", "user_message"}, {"content", "hi"}});
    std::vector<std::string> types;
    for (int i = 0; i < 5; ++i) types.push_back(c.recv()["type"]);
    EXPECT_EQ(types, (std::vector<std::string>{"agent_started", "agent_thinking", "tool_executing",
                                               "tool_completed", "agent_completed"}));
    c.close();
  }
  EXPECT_EQ(backend.metric("wsgate_backend_context_fallbacks_total{attribute=\"thread_id\"}"), 1);
  EXPECT_EQ(backend.metric("wsgate_backend_stage_failures_total{stage=\"context.validate\"}"), 0);
  auto trace = trace_of(backend, "beast-fallback-01");
  EXPECT_EQ(first_error(trace), nullptr);
  EXPECT_EQ(backend.stop(), 0) << backend.log();
}

TEST(BackendBeastClient, HandlerExceptionIsTracedInternalError) {
  BackendProcess backend({"--fault", "handler.throw=ping"});
  {
    Client c(backend.port(), backend.token("u", "t"), "beast-throw-0001");
    c.recv();
    c.send({{"type", "ping"}});
    auto err = c.recv();
    EXPECT_EQ(err["error"]["code"], "INTERNAL_ERROR");
    EXPECT_EQ(err["error"]["correlation_id"], "beast-throw-0001");
    auto reason = c.await_close();
    EXPECT_EQ(reason.code, 1011);
    EXPECT_EQ(std::string(reason.reason.data(), reason.reason.size()), "Internal error");
  }
  auto trace = trace_of(backend, "beast-throw-0001");
  ASSERT_NE(first_error(trace), nullptr);
  EXPECT_EQ((*first_error(trace))["stage"], "message.handle");
  EXPECT_EQ((*first_error(trace))["detail"], "exception: injected fault handler.throw=ping");
  EXPECT_EQ(backend.stop(), 0) << backend.log();
}

TEST(BackendBeastClient, SigtermClosesWith1001) {
  BackendProcess backend({});
  Client c(backend.port(), backend.token("u", "t"), "");
  c.recv();
  std::thread stopper([&] { backend.stop(); });
  auto reason = c.await_close();
  stopper.join();
  EXPECT_EQ(reason.code, 1001);
  EXPECT_EQ(backend.stop(), 0) << backend.log();
}

TEST(BackendBeastClient, UnknownPathIs404) {
  BackendProcess backend({});
  EXPECT_THROW(Client(backend.port(), backend.token("u", "t"), "", "/nope"),
               boost::system::system_error);
  EXPECT_EQ(backend.stop(), 0);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH/TO/wsgate-backend [gtest flags]\n", argv[0]);
    return 2;
  }
  g_binary = argv[1];
  return RUN_ALL_TESTS();
}
