#pragma once
/// \file checks.h
/// Input checks shared by the clusterers; each throws cbtm::Error naming the component
/// (`owner`, e.g. "clusterer 'kmeans'") and the offending value or row.
#include <cstdint>
#include <string>

#include "cbtm/matrix.h"

namespace cbtm::kmeans {

/// x must have at least one column, at least k rows ("k=8 is larger than the number of
/// points (5)"), and only finite values ("row 17, column 3 is nan").
void check_fit_input(const Matrix& x, int32_t k, const std::string& owner);
/// x must have `dim` columns and only finite values.
void check_assign_input(const Matrix& x, int64_t dim, const std::string& owner);

}  // namespace cbtm::kmeans
