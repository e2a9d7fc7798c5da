#include "common/redact.hpp"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

namespace wsgate {
namespace {

// ASCII only: <cctype> depends on the locale and on char signedness.
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_alpha(char c) { return is_lower(c) || is_upper(c); }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_b64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }
// What may follow "Bearer " or "jwt.": base64 (either alphabet), dots, padding.
bool is_token_char(char c) {
  return is_b64url(c) || c == '.' || c == '+' || c == '/' || c == '=' || c == '~';
}
char lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  return lower(c) - 'a' + 10;
}

bool iequals_at(std::string_view s, std::size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (lower(s[pos + i]) != word[i]) return false;
  return true;
}

// The text with each valid %XX decoded once, and where each decoded byte
// starts in the original, so a span found in the decoded text maps back.
class Decoded {
 public:
  explicit Decoded(std::string_view raw) {
    if (raw.find('%') == std::string_view::npos) {
      view_ = raw;
      return;
    }
    text_.reserve(raw.size());
    offsets_.reserve(raw.size() + 1);
    for (std::size_t i = 0; i < raw.size();) {
      offsets_.push_back(i);
      if (raw[i] == '%' && i + 2 < raw.size() && is_hex(raw[i + 1]) && is_hex(raw[i + 2])) {
        text_.push_back(static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2])));
        i += 3;
      } else {
        text_.push_back(raw[i++]);
      }
    }
    offsets_.push_back(raw.size());
    view_ = text_;
  }
  Decoded(const Decoded&) = delete;  // view_ may point into text_
  Decoded& operator=(const Decoded&) = delete;
  std::string_view text() const { return view_; }
  std::size_t raw_offset(std::size_t i) const { return offsets_.empty() ? i : offsets_[i]; }
  // Whether text()[i] was written as %XX (then it is data, never a delimiter).
  bool encoded(std::size_t i) const { return raw_offset(i + 1) - raw_offset(i) > 1; }

 private:
  std::string text_;
  std::vector<std::size_t> offsets_;
  std::string_view view_;
};

// Random rather than a word: letters and digits mixed in short same-class
// runs, few separators. Identifiers ("factory_create_manager_with_retries_v2",
// "staging-e2e-user-001-...") have long runs or many separators; hex-only
// runs are IDs (see the header).
bool token_shaped(std::string_view v, std::size_t min_len) {
  if (v.size() < min_len) return false;
  std::size_t letters = 0, digits = 0, separators = 0, runs = 0;
  bool hex_only = true;
  int prev_class = -1;
  for (char c : v) {
    int cls = is_digit(c) ? 0 : is_lower(c) ? 1 : is_upper(c) ? 2 : 3;
    if (cls == 0) ++digits;
    if (cls == 1 || cls == 2) ++letters;
    if (cls == 3) ++separators;
    if (cls != 3 && cls != prev_class) ++runs;
    prev_class = cls;
    if (!is_hex(c) && c != '-') hex_only = false;
  }
  if (hex_only || letters == 0 || digits == 0) return false;
  return separators * 8 <= v.size() && runs * 4 >= v.size();
}

// A bearer credential, not the English word after "bearer".
bool credential_shaped(std::string_view v) {
  if (v.size() < 8) return false;
  bool non_letter = std::any_of(v.begin(), v.end(), [](char c) { return !is_alpha(c); });
  return non_letter || v.size() >= 20;
}

using Span = std::pair<std::size_t, std::size_t>;

// Whether a value is a token is decided without its padding, which the next
// character decides to be padding or not ("x=" + "[REDACTED]" on a second pass).
std::string_view unpadded(std::string_view v) {
  while (!v.empty() && v.back() == '=') v.remove_suffix(1);
  return v;
}

// '=' only as trailing padding: "realm=x" is an auth-param, not one token.
std::size_t token_end(std::string_view d, std::size_t from) {
  while (from < d.size() && is_token_char(d[from])) {
    if (d[from] == '=') {
      std::size_t pad = d.find_first_not_of('=', from);
      if (pad != std::string_view::npos && is_token_char(d[pad])) return from;
      return pad == std::string_view::npos ? d.size() : pad;
    }
    ++from;
  }
  return from;
}

// "eyJ" (base64url of '{"') + base64url segments, at least two dots.
std::optional<std::size_t> jwt_end(std::string_view d, std::size_t i) {
  if (d.compare(i, 3, "eyJ") != 0) return std::nullopt;
  std::size_t end = i;
  int dots = 0;
  while (end < d.size() && (is_b64url(d[end]) || d[end] == '.' || d[end] == '=')) {
    if (d[end] == '.') ++dots;
    ++end;
  }
  if (dots < 2) return std::nullopt;
  return end;
}

// "Authorization: Bearer", "authorization=Bearer", "\"authorization\":\"Bearer":
// there any value is a credential, however short.
bool after_authorization(std::string_view d, std::size_t i) {
  constexpr std::string_view kName = "authorization";
  std::size_t k = i;
  while (k > 0 && (d[k - 1] == ' ' || d[k - 1] == ':' || d[k - 1] == '=' || d[k - 1] == '"')) --k;
  return k >= kName.size() && iequals_at(d, k - kName.size(), kName);
}

std::optional<Span> match_bearer(std::string_view d, std::size_t i) {
  if (!iequals_at(d, i, "bearer") || (i > 0 && is_b64url(d[i - 1]))) return std::nullopt;
  std::size_t start = i + 6;
  while (start < d.size() && (d[start] == ' ' || d[start] == '+')) ++start;
  if (start == i + 6) return std::nullopt;
  std::size_t end = token_end(d, start);
  std::string_view value = unpadded(d.substr(start, end - start));
  if (value.empty()) return std::nullopt;
  if (!credential_shaped(value) && !after_authorization(d, i)) return std::nullopt;
  return Span{start, end};
}

std::optional<Span> match_jwt_subprotocol(std::string_view d, std::size_t i) {
  if (!iequals_at(d, i, "jwt.") || (i > 0 && is_b64url(d[i - 1]))) return std::nullopt;
  std::size_t start = i + 4;
  std::size_t end = token_end(d, start);
  if (!jwt_end(d, start) && !token_shaped(unpadded(d.substr(start, end - start)), 16))
    return std::nullopt;
  return Span{start, end};
}

std::optional<Span> match_jwt(std::string_view d, std::size_t i) {
  if (i > 0 && is_b64url(d[i - 1])) return std::nullopt;
  auto end = jwt_end(d, i);
  if (!end) return std::nullopt;
  return Span{i, *end};
}

bool is_key_char(char c) { return is_b64url(c) || c == '.' || c == '[' || c == ']'; }
// Ends a query value unless written as %XX.
bool ends_value(char c) {
  return static_cast<unsigned char>(c) <= ' ' || c == '&' || c == '#' || c == ';' || c == '"' ||
         c == '\'' || c == '<' || c == '>' || c == ',' || c == '\\' || c == 0x7f;
}

// "?key=value" or "&key=value" with a credential key: the value.
std::optional<Span> match_query_value(const Decoded& dec, std::size_t i) {
  std::string_view d = dec.text();
  if (i == 0 || (d[i - 1] != '?' && d[i - 1] != '&' && d[i - 1] != ';')) return std::nullopt;
  std::size_t eq = i;
  while (eq < d.size() && is_key_char(d[eq])) ++eq;
  if (eq == i || eq >= d.size() || d[eq] != '=') return std::nullopt;
  if (!is_secret_key(d.substr(i, eq - i))) return std::nullopt;
  std::size_t end = eq + 1;
  while (end < d.size() && !(ends_value(d[end]) && !dec.encoded(end))) ++end;
  if (end == eq + 1) return std::nullopt;
  return Span{eq + 1, end};
}

// Appends the secret spans of dec.text()[from, to). `keys`: whether the
// query-key rule applies (not inside a key, which holds no '?' or '&').
void find_secrets(const Decoded& dec, std::size_t from, std::size_t to, bool keys,
                  std::vector<Span>& spans) {
  std::string_view d = dec.text().substr(0, to);
  std::size_t i = from;
  while (i < d.size()) {
    std::optional<Span> hit = match_bearer(d, i);
    if (!hit) hit = match_jwt_subprotocol(d, i);
    if (!hit) hit = match_jwt(d, i);
    if (!hit && keys) {
      hit = match_query_value(dec, i);
      // A key shaped like a token is a secret too ("?eyJ...=x").
      if (hit) find_secrets(dec, i, hit->first - 1, false, spans);
    }
    if (hit) {
      spans.push_back(*hit);
      i = hit->second;
      continue;
    }
    // Every rule above starts at a run boundary, so a run can be skipped whole.
    if (is_b64url(d[i]) && (i == 0 || !is_b64url(d[i - 1]))) {
      std::size_t end = i;
      while (end < d.size() && is_b64url(d[end])) ++end;
      if (token_shaped(d.substr(i, end - i), 32)) spans.emplace_back(i, end);
      i = end;
      continue;
    }
    ++i;
  }
}

std::string decode_key(std::string_view raw) {
  Decoded dec(raw);
  std::string key(dec.text());
  std::replace(key.begin(), key.end(), '+', ' ');
  return key;
}

}  // namespace

bool is_secret_key(std::string_view key) {
  std::string k;
  k.reserve(key.size());
  for (char c : key) k.push_back(c == '-' || c == ' ' || c == '.' ? '_' : lower(c));
  if (k.size() >= 2 && k.compare(k.size() - 2, 2, "[]") == 0) k.resize(k.size() - 2);
  static constexpr std::string_view kExact[] = {
      "token",       "access_token",  "id_token",  "refresh_token", "jwt",
      "auth",        "authorization", "api_key",   "apikey",        "key",
      "secret",      "client_secret", "password",  "passwd",        "pwd",
      "pass",        "session",       "sessionid", "session_id",    "sid",
      "sig",         "signature",     "code",      "ticket",        "credential",
      "credentials", "private_key",   "otp"};
  if (std::find(std::begin(kExact), std::end(kExact), k) != std::end(kExact)) return true;
  static constexpr std::string_view kSuffix[] = {"token",    "_secret",    "_key", "apikey",
                                                 "password", "_signature", "_sig"};
  return std::any_of(std::begin(kSuffix), std::end(kSuffix), [&](std::string_view s) {
    return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0;
  });
}

std::size_t redact_secrets(std::string& s) {
  Decoded dec(s);
  std::vector<Span> spans;
  find_secrets(dec, 0, dec.text().size(), true, spans);
  if (spans.empty()) return 0;
  std::string out;
  out.reserve(s.size());
  std::size_t copied = 0;
  for (auto [begin, end] : spans) {
    std::size_t raw_begin = dec.raw_offset(begin);
    out.append(s, copied, raw_begin - copied);
    out += kRedacted;
    copied = dec.raw_offset(end);
  }
  out.append(s, copied, std::string::npos);
  s = std::move(out);
  return spans.size();
}

std::string redacted(std::string_view text) {
  std::string out(text);
  redact_secrets(out);
  return out;
}

std::string redacted_prefix(std::string_view text, bool cut) {
  if (cut) {
    std::size_t n = text.size();
    while (n > 0 && !ends_value(text[n - 1])) --n;
    text = text.substr(0, n);
  }
  return redacted(text);
}

std::string redact_target(std::string_view target) {
  auto q = target.find('?');
  std::string out = redacted(target.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  out += '?';
  while (true) {
    auto amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    auto eq = param.find('=');
    if (eq != std::string_view::npos && eq + 1 < param.size() &&
        is_secret_key(decode_key(param.substr(0, eq)))) {
      out += redacted(param.substr(0, eq + 1));
      out += kRedacted;
    } else {
      out += redacted(param);
    }
    if (amp == std::string_view::npos) break;
    out += '&';
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace wsgate
