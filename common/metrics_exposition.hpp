#pragma once
// Prometheus exposition of a prometheus-cpp registry, for our own admin
// server (prometheus-cpp's pull exposer would bring a second HTTP server).
#include <prometheus/registry.h>

#include <string>
#include <string_view>

namespace wsgate {

inline constexpr std::string_view kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus_text(prometheus::Registry& registry);

}  // namespace wsgate
