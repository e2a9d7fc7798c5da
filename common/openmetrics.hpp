#pragma once
// OpenMetrics 1.0 text exposition of a prometheus-cpp registry, with
// exemplars. prometheus-cpp only speaks the Prometheus 0.0.4 text format and
// has no exemplars, so this serializer works over its Collect() output and
// asks an ExemplarStore for the latest exemplar of each counter series.
//
// The Prometheus text format stays the default; /metrics answers OpenMetrics
// only when the scraper's Accept header asks for it (accepts_openmetrics).
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsgate {

inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// The OpenMetrics limit on an exemplar's label set: names and values
// together at most 128 UTF-8 characters. Longer exemplars are not exposed.
inline constexpr std::size_t kMaxExemplarLabelChars = 128;

struct Exemplar {
  std::map<std::string, std::string> labels;  // e.g. {"trace_id", "<correlation id>"}
  double value = 1;
  std::chrono::system_clock::time_point time;
};

// The latest exemplar per series, keyed by sample name ("wsgate_closes_total")
// and the series' label set. Thread-safe; bounded by the series count of the
// metrics it is recorded for.
class ExemplarStore {
 public:
  using Labels = std::map<std::string, std::string>;

  void record(std::string_view sample_name, const Labels& series_labels, Exemplar exemplar);
  std::optional<Exemplar> find(std::string_view sample_name,
                               const std::vector<prometheus::ClientMetric::Label>& labels) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Exemplar> latest_;
};

// True when the Accept header names application/openmetrics-text with a
// non-zero quality (Prometheus sends it first when it can store exemplars).
bool accepts_openmetrics(std::string_view accept_header);

// OpenMetrics text: counters as `<family>_total` samples under
// `# TYPE <family> counter` (family = the name without `_total`), gauges,
// histograms, summaries, untyped as `unknown`, and `# EOF` at the end.
// `exemplars` may be null.
std::string render_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                               const ExemplarStore* exemplars);

// Numbers as prometheus-cpp's text format spells them (%.16g), "+Inf",
// "-Inf", "NaN".
std::string format_metric_value(double value);

}  // namespace wsgate
