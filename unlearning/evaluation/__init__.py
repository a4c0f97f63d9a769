"""How a model is scored: the metrics, the probe suite, the distance to the oracle and the
cache of evaluations."""
