"""Runs an experiments file's runs with N workers and, when all have finished, prints one table:
the runs best first (by the metric the Evaluator gates on), then the failures with their error.

    python -m training.run_group training/experiments/sample.json --workers 2 --data-dir D [--save]

Each worker is a `python -m training.run_experiment` subprocess (the commands
`training.prepare_experiments` prints), so a crash or a bad config fails that run only. All runs
share `--root`: its ML Metadata store takes concurrent writers (sqlite's lock, waited on and
retried by MLMD) and each run finds its own results by its run id. A run's output goes to
`<root>/groups/<group>/<n>.log`.
"""

import argparse
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training.prepare_experiments import commands, read_experiments

RUN_LINE = re.compile(r"^Run: (\S+)", re.MULTILINE)


def run_one(argv: list, log: Path) -> dict:
    """Runs one experiment; {"run": run id or None, "returncode", "error": its last error line}."""
    with open(log, "w") as out:
        done = subprocess.run(
            [sys.executable, *argv], stdout=out, stderr=subprocess.STDOUT, text=True
        )
    text = log.read_text()
    run = RUN_LINE.search(text)
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    lines = [line for line in text.splitlines() if line.strip()]
    error = errors[-1] if errors else (lines[-1] if lines and done.returncode else "")
    return {"run": run.group(1) if run else None, "returncode": done.returncode, "error": error}


def run_group(path: str, workers: int, root: str, options: list) -> list:
    """Runs every experiment of the file; the results in file order."""
    name, group = read_experiments(path)
    logs = Path(root) / "groups" / _safe(str(name))
    logs.mkdir(parents=True, exist_ok=True)
    from training.outputs import open_store

    # The store is created once here: workers that all create an empty store at once collide.
    open_store(str(Path(root) / "metadata.sqlite"), readonly=False)
    argvs = commands(path, ["--root", root, *options])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_one, argv, logs / f"{n}.log") for n, argv in enumerate(argvs)]
        results = [future.result() for future in futures]
    for n, (config, result) in enumerate(zip(group, results)):
        result.update(index=n, config=config, log=str(logs / f"{n}.log"))
    return results


def summary(results: list, root: str) -> str:
    """The finished runs best first, as `training.runs list` shows them, then the failures."""
    from training.runs import LIST_HEADERS, best_first, list_rows, load_runs, table

    recorded = {run.name: run for run in load_runs(str(Path(root) / "metadata.sqlite"))}
    finished = [
        recorded[r["run"]] for r in results if r["returncode"] == 0 and r["run"] in recorded
    ]
    failed = [r for r in results if r["returncode"] != 0 or r["run"] not in recorded]
    lines = [
        f"{len(finished)} of {len(results)} runs finished",
        table(list_rows(best_first(finished)), LIST_HEADERS),
    ]
    if failed:
        lines += [
            "",
            f"{len(failed)} failed:",
            table(
                [[r["index"], json.dumps(r["config"])[:80], r["error"], r["log"]] for r in failed],
                ["#", "config", "error", "log"],
            ),
        ]
    return "\n".join(lines)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "ungrouped"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments_file")
    parser.add_argument("--workers", type=int, default=1, help="runs at the same time")
    parser.add_argument("--root", default="artifacts", help="pipeline root shared by the runs")
    args, options = parser.parse_known_args(argv)
    try:
        results = run_group(args.experiments_file, args.workers, args.root, options)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from common.quiet import quiet

    quiet()
    print(summary(results, args.root))
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
