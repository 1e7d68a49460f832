// Catch2 behind one include, for Catch2 v2 (Debian 12's catch2 2.13) and v3 (Debian 13's 3.x).
//
// Tests include this instead of a Catch2 header and use, besides the macros:
//   Approx(x)            floating-point comparison (v3 spells it Catch::Approx)
//   ContainsText("s")    string matcher: the text contains s (v2 Catch::Contains,
//                        v3 Catch::Matchers::ContainsSubstring; v3's Matchers::Contains is
//                        the range matcher, so the name differs from both on purpose)
#pragma once

#include <string>

// The major version CMake found (tests/CMakeLists.txt), else whichever headers are there.
#if defined(CBTM_CATCH2_MAJOR)
#define CBTM_CATCH2_V3 (CBTM_CATCH2_MAJOR >= 3)
#elif __has_include(<catch2/catch_all.hpp>)
#define CBTM_CATCH2_V3 1
#else
#define CBTM_CATCH2_V3 0
#endif

#if CBTM_CATCH2_V3
#include <catch2/catch_all.hpp>
using Catch::Approx;
inline auto ContainsText(const std::string& text) {
  return Catch::Matchers::ContainsSubstring(text);
}
#else
#include <catch2/catch.hpp>
inline auto ContainsText(const std::string& text) { return Catch::Matchers::Contains(text); }
#endif
