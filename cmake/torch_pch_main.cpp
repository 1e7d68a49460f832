// Executable that owns the precompiled <torch/torch.h> for -fPIE targets (tests, benchmarks).
int main() { return 0; }
