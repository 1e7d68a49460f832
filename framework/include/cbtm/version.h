#pragma once
/// \file version.h
namespace cbtm {
inline constexpr const char* kVersion = "0.1.0";
}
