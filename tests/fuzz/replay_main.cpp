// Plain driver for the fuzz entry points, used when WSGATE_FUZZ is OFF (the
// ordinary sanitizer build of `make test`): runs LLVMFuzzerTestOneInput once
// per file of the given files and directories (sorted, recursively).
//
//   fuzz_x CORPUS_DIR [-optional=DIR]...
//
// A plain argument must exist and hold at least one input; -optional=DIR may
// be absent (crashes/<target>/ only exists once something was found).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace fs = std::filesystem;

namespace {

void collect(const fs::path& p, std::vector<fs::path>& out) {
  if (fs::is_directory(p)) {
    for (const auto& e : fs::recursive_directory_iterator(p)) {
      if (!e.is_regular_file()) continue;
      const std::string name = e.path().filename().string();
      if (!name.empty() && name[0] == '.') continue;  // .gitkeep and friends
      out.push_back(e.path());
    }
  } else if (fs::is_regular_file(p)) {
    out.push_back(p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    bool optional = false;
    if (arg.starts_with("-optional=")) {
      optional = true;
      arg.remove_prefix(10);
    }
    const fs::path p{std::string(arg)};
    const size_t before = inputs.size();
    if (fs::exists(p)) collect(p, inputs);
    if (!optional && inputs.size() == before) {
      std::fprintf(stderr, "replay: %s: missing or empty\n", p.c_str());
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& p : inputs) {
    std::ifstream f(p, std::ios::binary);
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", p.c_str(), data.size());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::fprintf(stderr, "replay: %zu inputs, all passed\n", inputs.size());
  return 0;
}
