"""Stage `train`: the reference engine (keras.py), the fast engine (jax/), and the stage that runs either (stage.py)."""
