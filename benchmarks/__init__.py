"""Speed comparisons against named baselines (run as scripts, see the README) and the module
that writes and reads their recorded results (:mod:`benchmarks.torch_bn_results`)."""
