"""What KubeflowV2DagRunner's spec lacks for open-source KFP, added after compiling.

- `defaultPipelineRoot`: the runner keeps the root only in the Vertex PipelineJob's runtime
  config, so a `.yaml` IR spec had none and KFP fell back to its own default (MinIO).
- Per-step CPU and memory requests, from a named profile (KFP turns them into pod requests).
- No cache for the baseline step: its output depends on the push destination, not its inputs.
- A check that every executor is a container or an importer, the only kinds KFP's backend runs
  (a TFX Resolver compiles to `resolver` executors, which only Vertex AI runs).
"""

RUNNABLE_EXECUTORS = {"container", "importer"}

# (cpu request, memory request GB, memory limit GB) per step; "*" is any other step.
RESOURCE_PROFILES = {
    "small": {  # the embedded sample, a laptop-sized cluster
        "*": (0.5, 1.0, 2.0),
        "Transform": (1.0, 2.0, 4.0),
        "Trainer": (1.0, 2.0, 4.0),
        "Evaluator": (1.0, 2.0, 4.0),
    },
    "standard": {  # full EMNIST (about 700k characters) or 10k+ lines
        "*": (1.0, 2.0, 4.0),
        "StatisticsGen": (2.0, 4.0, 8.0),
        "Transform": (2.0, 8.0, 12.0),
        "Trainer": (4.0, 12.0, 16.0),
        "Evaluator": (2.0, 8.0, 12.0),
    },
}
DEFAULT_RESOURCES = "small"


def executor_of(spec: dict, task: str) -> dict:
    """The deploymentSpec executor that runs `task` of the root DAG."""
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    return spec["deploymentSpec"]["executors"][spec["components"][component]["executorLabel"]]


def unrunnable_executors(spec: dict) -> dict:
    """{executor label: kind} of executors open-source KFP refuses."""
    return {
        label: kind
        for label, executor in spec["deploymentSpec"]["executors"].items()
        for kind in executor
        if kind not in RUNNABLE_EXECUTORS
    }


def finish(spec: dict, pipeline_root: str, resources: str, uncached: tuple = ()) -> dict:
    """Completes a compiled PipelineSpec (a dict, changed in place and returned)."""
    bad = unrunnable_executors(spec)
    if bad:
        raise ValueError(f"open-source KFP cannot run these executors: {bad}")
    spec["defaultPipelineRoot"] = pipeline_root
    profile = RESOURCE_PROFILES[resources]
    for task in spec["root"]["dag"]["tasks"]:
        executor = executor_of(spec, task)
        if "container" in executor:
            cpu, memory, memory_limit = profile.get(task, profile["*"])
            executor["container"]["resources"] = {
                "cpuRequest": cpu,
                "memoryRequest": memory,
                "memoryLimit": memory_limit,
            }
    for task in uncached:
        if task in spec["root"]["dag"]["tasks"]:
            spec["root"]["dag"]["tasks"][task]["cachingOptions"] = {"enableCache": False}
    return spec
