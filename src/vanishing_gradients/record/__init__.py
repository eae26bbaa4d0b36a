"""TensorBoard event files: written for every run (runs.py), read back into tables by stage `gradients`."""
