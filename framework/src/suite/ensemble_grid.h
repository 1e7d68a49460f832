#pragma once
// Internal to suites: validation of a suite's `ensemble_grid:` (Suite::grid_ensembles expands it).
#include "cbtm/config_node.h"

namespace cbtm {

/// Error naming the suite file, line and key unless `n` is a map with a scalar `type`, an
/// optional scalar `name` template whose {placeholders} are list-valued keys, and at least one
/// list-valued key (a non-empty list of scalars); every list key must appear in `name`.
void check_ensemble_grid(const ConfigNode& n);

}  // namespace cbtm
