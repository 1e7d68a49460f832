#pragma once
/// \file abi.h
/// The plugin ABI version. A plugin library exports `cbtm_plugin_abi_version()` returning
/// the value it was compiled with; the host refuses a library whose value differs. Bump it
/// whenever an interface header (embedder.h, clusterer.h, ...) or Registry changes layout.
#define CBTM_PLUGIN_ABI_VERSION 11

#if defined(_WIN32)
#define CBTM_EXPORT __declspec(dllexport)
#else
#define CBTM_EXPORT __attribute__((visibility("default")))
#endif
