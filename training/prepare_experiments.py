"""Prints one `python -m training.run_experiment` command per experiment of an experiments file,
for GNU parallel, as the FSDL labs' script does:

    python -m training.prepare_experiments training/experiments/sample.json --data-dir D | parallel -j2

The file is `{"experiment_group": "name", "experiments": [config, ...]}`; each command carries the
group inside its config (recorded with the run) and the options given after the file. Runs may
share their root: see training.run_experiment. `training.run_group` runs the same commands itself.
"""

import argparse
import json
import shlex
import sys


def read_experiments(path: str) -> tuple:
    """(group, configs) of an experiments file, each config with the file's experiment_group set
    (a config's own group wins). Configs are not validated here: a bad one fails as its own run."""
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or not isinstance(raw.get("experiments"), list):
        raise ValueError(
            f'{path}: expected {{"experiment_group": ..., "experiments": [config, ...]}}'
        )
    group = raw.get("experiment_group", "")
    return group, [
        {"experiment_group": group, **config} if isinstance(config, dict) else config
        for config in raw["experiments"]
    ]


def commands(path: str, options: list) -> list:
    """[argv] of the runs, without the interpreter."""
    return [
        ["-m", "training.run_experiment", json.dumps(config), *options]
        for config in read_experiments(path)[1]
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments_file")
    args, options = parser.parse_known_args(argv)
    try:
        for argv_ in commands(args.experiments_file, options):
            print(shlex.join(["python", *argv_]))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
