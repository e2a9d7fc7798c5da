#include "common/redact.hpp"

#include <cctype>

namespace wsgate {
namespace {

bool is_b64url(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=';
}
bool is_token_char(char c) { return is_b64url(c) || c == '.' || c == '+' || c == '/'; }

bool iequals_at(const std::string& s, std::size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[pos + i])) != word[i]) return false;
  return true;
}

// Replaces s[begin, end) with the marker; returns the index after it.
std::size_t replace_span(std::string& s, std::size_t begin, std::size_t end) {
  s.replace(begin, end - begin, kRedacted);
  return begin + kRedacted.size();
}

}  // namespace

std::size_t redact_secrets(std::string& s) {
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    // "Bearer <token>" (any case), as in an Authorization header.
    if (iequals_at(s, i, "bearer ") && (i == 0 || !is_b64url(s[i - 1]))) {
      std::size_t start = i + 7;
      while (start < s.size() && s[start] == ' ') ++start;
      std::size_t end = start;
      while (end < s.size() && is_token_char(s[end])) ++end;
      if (end > start) {
        i = replace_span(s, start, end);
        ++count;
        continue;
      }
    }
    // "jwt.<token>" subprotocol values.
    if (iequals_at(s, i, "jwt.") && (i == 0 || !is_b64url(s[i - 1]))) {
      std::size_t start = i + 4;
      std::size_t end = start;
      while (end < s.size() && is_token_char(s[end])) ++end;
      if (end > start) {
        i = replace_span(s, start, end);
        ++count;
        continue;
      }
    }
    // A bare JWT: header segment starts with base64url('{"') = "eyJ".
    // '=' ends padding, so it may precede a token ("?token=eyJ...").
    if (s.compare(i, 3, "eyJ") == 0 && (i == 0 || s[i - 1] == '=' || !is_b64url(s[i - 1]))) {
      std::size_t end = i;
      int dots = 0;
      while (end < s.size() && (is_b64url(s[end]) || s[end] == '.')) {
        if (s[end] == '.') ++dots;
        ++end;
      }
      if (dots >= 2) {
        i = replace_span(s, i, end);
        ++count;
        continue;
      }
    }
    ++i;
  }
  return count;
}

std::string redacted(std::string_view text) {
  std::string out(text);
  redact_secrets(out);
  return out;
}

}  // namespace wsgate
