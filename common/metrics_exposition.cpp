#include "common/metrics_exposition.hpp"

#include <prometheus/text_serializer.h>

namespace wsgate {

std::string render_prometheus_text(prometheus::Registry& registry) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry.Collect());
}

}  // namespace wsgate
