"""The numbers the study is measured against (docs/study.md): the original write-up and its expectations."""

# The original's experiments as (config, depth, width), with its single runs (train, test accuracy)
# and runs of the original code on Keras 3.15 + TF 2.21, seeds 1-3: mean (train, test).
HEADLINE = {"shallow_tanh": ("tanh_uniform", 1, 5), "deep_tanh": ("tanh_uniform", 5, 5), "deep_relu": ("relu_he", 5, 5)}
ORIGINAL = {"shallow_tanh": (0.816, 0.816), "deep_tanh": (0.530, 0.468), "deep_relu": (0.836, 0.840)}
CURRENT_KERAS = {"shallow_tanh": (0.806, 0.810), "deep_tanh": (0.581, 0.550), "deep_relu": (0.834, 0.828)}

# What the headline experiments must show, as (experiment, low, high) bounds on mean test accuracy.
EXPECTED_TEST_ACCURACY = [("shallow_tanh", 0.78, 0.85), ("deep_tanh", None, 0.70), ("deep_relu", 0.80, None)]

# The original's gradient observation (mean |kernel gradient| during training).
ORIGINAL_GRADIENTS = {"deep_tanh": {"output": (0.05, 0.1), "hidden_1": (0.05, 0.1)},
                      "deep_relu": {"hidden_1": (0.2, 0.4)}}
ORIGINAL_RELU_LIMIT = (15, 20)  # 15 ReLU layers still learn, 20 do not
ORIGINAL_RELU_CONVERGENCE = 100  # epochs, "converges in about 100 epochs"
