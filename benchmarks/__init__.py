"""modelfetch benchmarks: ratios against baselines measured in the same run, on loopback."""
