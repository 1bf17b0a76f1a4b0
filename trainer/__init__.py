"""The Trainer: model kinds, datasets, networks, the experiment config and run_fn."""

# What run_fn writes in the model run directory: the config, history and throughput of a run.
METRICS_FILE = "training_metrics.json"
