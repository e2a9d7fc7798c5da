#pragma once
// Invariants of one admin answer, shared by the proxy's and the backend's
// admin fuzz targets: raw request bytes went through AdminRouter::respond
// (the parser and answer code the admin server uses on a connection).
//   - an answer is either nothing (incomplete request) or one HTTP/1.x
//     response head with a three-digit status and a Content-Length;
//   - a body is exactly Content-Length bytes, empty for a HEAD the parser
//     took;
//   - a JSON body is valid JSON (no invalid UTF-8 escaped through);
//   - a 405 carries Allow, a 401 WWW-Authenticate;
//   - never a 500: the real handlers do not throw on any input (the
//     router's catch is the last line, not the way input errors surface).
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_check.hpp"

namespace wsgate::fuzz {

inline std::string header_value(std::string_view head, std::string_view name) {
  std::string needle = "\r\n" + std::string(name) + ": ";
  auto at = head.find(needle);
  if (at == std::string_view::npos) return {};
  at += needle.size();
  return std::string(head.substr(at, head.find("\r\n", at) - at));
}

inline void check_admin_answer(std::string_view request, const std::string& answer) {
  if (answer.empty()) return;
  FUZZ_CHECK(answer.rfind("HTTP/1.", 0) == 0);
  auto end = answer.find("\r\n\r\n");
  FUZZ_CHECK(end != std::string::npos);
  std::string_view head(answer.data(), end + 2);
  std::string_view body(answer.data() + end + 4, answer.size() - end - 4);
  FUZZ_CHECK(answer.size() >= 12 && answer[8] == ' ');
  const int status = std::stoi(answer.substr(9, 3));
  FUZZ_CHECK(status >= 200 && status <= 599 && status != 500);
  const std::string length = header_value(head, "Content-Length");
  FUZZ_CHECK(!length.empty());
  // A request the parser refused (400, 413, 431, then close) is answered
  // with a body whatever its method looked like.
  const bool refused = (status == 400 || status == 413 || status == 431) &&
                       header_value(head, "Connection") == "close";
  const bool head_request = request.rfind("HEAD ", 0) == 0 && !refused;
  if (head_request)
    FUZZ_CHECK(body.empty());
  else
    FUZZ_CHECK(std::to_string(body.size()) == length);
  if (!head_request && header_value(head, "Content-Type") == "application/json")
    FUZZ_CHECK(nlohmann::json::accept(body));
  if (status == 405) FUZZ_CHECK(header_value(head, "Allow") == "GET, HEAD");
  if (status == 401) FUZZ_CHECK(!header_value(head, "WWW-Authenticate").empty());
}

}  // namespace wsgate::fuzz
