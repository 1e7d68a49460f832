#pragma once
/// \file catch_torch.h
/// Catch2 for tests that also include LibTorch. LibTorch 2.x's c10 logging defines a CHECK
/// macro unconditionally, which silently replaces Catch's CHECK when torch comes second.
/// Include this header first in such a test (instead of "support/catch.h"): it brings
/// torch in, drops its CHECK, and then defines Catch's.
#include <torch/torch.h>
#undef CHECK
#include "support/catch.h"
