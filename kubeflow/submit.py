"""Submits a compiled spec to a Kubeflow Pipelines API server: uploads it (a new pipeline, or a new
version of the pipeline of the same name) and starts a run of that version in an experiment.

    python -m kubeflow.submit pipeline.yaml --host http://localhost:8080 \
        --experiment characters --run-name lenet-5-epochs [--param NAME=VALUE ...]

Uses the kfp 2.5 client (API v2beta1). `--param` values are JSON when they parse as JSON, text
otherwise, and must be parameters the spec declares (`root.inputDefinitions`): a spec compiled by
kubeflow.runner declares none, its settings are compiled in, so KFP would refuse any.
"""

import argparse
import json
import sys
import time

import yaml


def parse_params(items: list) -> dict:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def check_params(spec: dict, params: dict) -> None:
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(
            f"the spec declares no parameter {', '.join(unknown)}"
            f" (it declares: {', '.join(sorted(declared)) or 'none'})"
        )


def submit(client, spec_path: str, experiment: str, run_name: str, params: dict) -> dict:
    """Uploads `spec_path` as a version of its pipeline and starts a run; returns the ids."""
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    check_params(spec, params)
    name = spec["pipelineInfo"]["name"]
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(spec_path, pipeline_name=name).pipeline_id
    version = client.upload_pipeline_version(
        spec_path, f"{run_name}-{time.strftime('%Y%m%d-%H%M%S')}", pipeline_id=pipeline_id
    )
    experiment_id = client.create_experiment(experiment).experiment_id
    run = client.run_pipeline(
        experiment_id,
        run_name,
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id,
        params=params,
    )
    return {
        "pipeline_id": pipeline_id,
        "version_id": version.pipeline_version_id,
        "experiment_id": experiment_id,
        "run_id": run.run_id,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the .yaml written by kubeflow.runner")
    parser.add_argument(
        "--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080"
    )
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--namespace", default="kubeflow", help="multi-user KFP: your profile namespace"
    )
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.param)
        with open(args.spec) as f:
            check_params(yaml.safe_load(f), params)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import kfp

    client = kfp.Client(host=args.host, namespace=args.namespace)
    ids = submit(client, args.spec, args.experiment, args.run_name, params)
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
