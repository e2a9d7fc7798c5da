#pragma once
// The version both binaries print for --version: CMake's project(VERSION),
// with `git describe` appended when the tree was a git checkout at
// configure time.
#include <string_view>

namespace wsgate {

std::string_view version();

}  // namespace wsgate
