"""The fast engine: every seed of many variants trained in one compiled JAX program, on CPU or GPU, without
TensorFlow."""
