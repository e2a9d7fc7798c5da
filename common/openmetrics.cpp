#include "common/openmetrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <cctype>
#include <cstdio>

namespace wsgate {
namespace {

template <typename Pairs>
std::string series_key(std::string_view name, const Pairs& sorted_pairs) {
  std::string key(name);
  for (const auto& [k, v] : sorted_pairs) {
    key += '\x1f';
    key += k;
    key += '\x1e';
    key += v;
  }
  return key;
}

std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// OpenMetrics escapes backslash, double quote and line feed in label values
// and in HELP text.
void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_labels(std::string& out, const std::vector<prometheus::ClientMetric::Label>& labels,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& l : labels) {
    if (!first) out += ',';
    first = false;
    out += l.name;
    out += "=\"";
    append_escaped(out, l.value);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    append_escaped(out, extra_value);
    out += '"';
  }
  out += '}';
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

void append_exemplar(std::string& out, const Exemplar& e) {
  std::size_t chars = 0;
  for (const auto& [k, v] : e.labels) chars += utf8_chars(k) + utf8_chars(v);
  if (chars > kMaxExemplarLabelChars) return;  // the parser would reject the whole scrape
  out += " # {";
  bool first = true;
  for (const auto& [k, v] : e.labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v);
    out += '"';
  }
  out += "} ";
  out += format_metric_value(e.value);
  out += ' ';
  out += format_timestamp(e.time);
}

void append_sample(std::string& out, std::string_view name,
                   const std::vector<prometheus::ClientMetric::Label>& labels, double value,
                   std::int64_t timestamp_ms, const Exemplar* exemplar = nullptr,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  append_labels(out, labels, extra_name, extra_value);
  out += ' ';
  out += format_metric_value(value);
  if (timestamp_ms != 0) {
    out += ' ';
    out += format_timestamp(std::chrono::system_clock::time_point(std::chrono::milliseconds(timestamp_ms)));
  }
  if (exemplar) append_exemplar(out, *exemplar);
  out += '\n';
}

void append_meta(std::string& out, std::string_view family, std::string_view type,
                 const std::string& help) {
  out += "# TYPE ";
  out += family;
  out += ' ';
  out += type;
  out += '\n';
  if (!help.empty()) {
    out += "# HELP ";
    out += family;
    out += ' ';
    append_escaped(out, help);
    out += '\n';
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // As prometheus-cpp's text serializer writes them (%.16g), so a series'
  // `le` labels are the same in both formats.
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%.*g", std::numeric_limits<double>::max_digits10 - 1, v);
  return std::string(buf, static_cast<std::size_t>(std::max(n, 0)));
}

void ExemplarStore::record(std::string_view sample_name, const Labels& series_labels,
                           Exemplar exemplar) {
  auto key = series_key(sample_name, series_labels);  // std::map: already sorted
  std::lock_guard lock(mutex_);
  latest_[std::move(key)] = std::move(exemplar);
}

std::optional<Exemplar> ExemplarStore::find(
    std::string_view sample_name, const std::vector<prometheus::ClientMetric::Label>& labels) const {
  std::vector<std::pair<std::string_view, std::string_view>> sorted;
  sorted.reserve(labels.size());
  for (const auto& l : labels) sorted.emplace_back(l.name, l.value);
  std::sort(sorted.begin(), sorted.end());
  auto key = series_key(sample_name, sorted);
  std::lock_guard lock(mutex_);
  auto it = latest_.find(key);
  if (it == latest_.end()) return std::nullopt;
  return it->second;
}

std::size_t ExemplarStore::size() const {
  std::lock_guard lock(mutex_);
  return latest_.size();
}

bool accepts_openmetrics(std::string_view accept) {
  while (!accept.empty()) {
    auto comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    auto semi = range.find(';');
    std::string_view type = trim(range.substr(0, semi));
    if (!iequals(type, "application/openmetrics-text")) continue;
    bool zero = false;
    while (semi != std::string_view::npos) {
      range.remove_prefix(semi + 1);
      semi = range.find(';');
      std::string_view param = trim(range.substr(0, semi));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        double q = 1;
        auto digits = param.substr(2);
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), q);
        (void)p;
        zero = ec == std::errc() && q <= 0;
      }
    }
    if (!zero) return true;
  }
  return false;
}

std::string render_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                               const ExemplarStore* exemplars) {
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& family_in : families) {
    // Series in label order: prometheus-cpp hands them out hash-ordered.
    prometheus::MetricFamily f;
    f.name = family_in.name;
    f.help = family_in.help;
    f.type = family_in.type;
    f.metric = family_in.metric;
    std::sort(f.metric.begin(), f.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                return a.label < b.label;
              });
    switch (f.type) {
      case prometheus::MetricType::Counter: {
        std::string family = f.name;
        if (family.size() > 6 && family.ends_with("_total")) family.resize(family.size() - 6);
        const std::string sample = family + "_total";
        append_meta(out, family, "counter", f.help);
        for (const auto& m : f.metric) {
          std::optional<Exemplar> ex;
          if (exemplars) ex = exemplars->find(sample, m.label);
          append_sample(out, sample, m.label, m.counter.value, m.timestamp_ms, ex ? &*ex : nullptr);
        }
        break;
      }
      case prometheus::MetricType::Gauge:
        append_meta(out, f.name, "gauge", f.help);
        for (const auto& m : f.metric) append_sample(out, f.name, m.label, m.gauge.value, m.timestamp_ms);
        break;
      case prometheus::MetricType::Untyped:
        append_meta(out, f.name, "unknown", f.help);
        for (const auto& m : f.metric) append_sample(out, f.name, m.label, m.untyped.value, m.timestamp_ms);
        break;
      case prometheus::MetricType::Histogram: {
        append_meta(out, f.name, "histogram", f.help);
        const std::string bucket = f.name + "_bucket";
        for (const auto& m : f.metric) {
          bool inf_seen = false;
          for (const auto& b : m.histogram.bucket) {
            if (std::isinf(b.upper_bound)) inf_seen = true;
            append_sample(out, bucket, m.label, static_cast<double>(b.cumulative_count),
                          m.timestamp_ms, nullptr, "le", format_metric_value(b.upper_bound));
          }
          if (!inf_seen)  // OpenMetrics requires the +Inf bucket
            append_sample(out, bucket, m.label, static_cast<double>(m.histogram.sample_count),
                          m.timestamp_ms, nullptr, "le", "+Inf");
          append_sample(out, f.name + "_count", m.label,
                        static_cast<double>(m.histogram.sample_count), m.timestamp_ms);
          append_sample(out, f.name + "_sum", m.label, m.histogram.sample_sum, m.timestamp_ms);
        }
        break;
      }
      case prometheus::MetricType::Summary: {
        append_meta(out, f.name, "summary", f.help);
        for (const auto& m : f.metric) {
          for (const auto& q : m.summary.quantile)
            append_sample(out, f.name, m.label, q.value, m.timestamp_ms, nullptr, "quantile",
                          format_metric_value(q.quantile));
          append_sample(out, f.name + "_count", m.label,
                        static_cast<double>(m.summary.sample_count), m.timestamp_ms);
          append_sample(out, f.name + "_sum", m.label, m.summary.sample_sum, m.timestamp_ms);
        }
        break;
      }
      default:
        break;
    }
  }
  out += "# EOF\n";
  return out;
}

}  // namespace wsgate
