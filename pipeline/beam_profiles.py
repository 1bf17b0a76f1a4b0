"""Named sets of Beam pipeline options, so a run says where its Beam steps execute by one word.

Every profile names its runner explicitly: left to itself, Beam 2.74's DirectRunner first tries to
download the Prism runner, which fails (slowly) in a pod without internet. Remote profiles list the
options they cannot run without; `beam_args` checks that Beam parses every option and that those
are given, before anything runs.

- local:    FnApiRunner in this process.
- local-mp: FnApiRunner with one worker process per core (two here): same results, more CPUs.
- dataflow: Google Cloud Dataflow; needs --project, --region, --temp_location and
            --sdk_container_image (the pipeline image, so workers have this project).
- flink, spark: the portable runner submitting to a Beam job server in front of the cluster
            (--job_endpoint=HOST:8099); SDK workers run in the pipeline image as an EXTERNAL
            worker pool beside each task manager / executor (--environment_config=HOST:50000).
"""

import dataclasses

from trainer.config import ConfigError


class BeamProfileError(ConfigError):
    """An unknown profile, an option Beam does not know, or a required option missing."""


@dataclasses.dataclass(frozen=True)
class Profile:
    args: tuple
    required: tuple = ()  # option names (Beam's dest names) that must have a value


_PORTABLE = Profile(
    args=("--runner=PortableRunner", "--environment_type=EXTERNAL"),
    required=("job_endpoint", "environment_config"),
)
PROFILES = {
    "local": Profile(args=("--runner=FnApiRunner",)),
    "local-mp": Profile(
        args=(
            "--runner=FnApiRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        )
    ),
    "dataflow": Profile(
        args=("--runner=DataflowRunner",),
        required=("project", "region", "temp_location", "sdk_container_image"),
    ),
    "flink": _PORTABLE,
    "spark": _PORTABLE,
}
DEFAULT_PROFILE = "local"


def _name(arg: str) -> str:
    return arg.split("=", 1)[0]


def beam_args(profile: str, extra=()) -> list:
    """The profile's options with `extra` ones (`--name=value`) added, replacing any of the same
    name; raises BeamProfileError unless Beam parses them all and the required ones are set."""
    if profile not in PROFILES:
        raise BeamProfileError(
            f"unknown Beam profile {profile!r}; choose from {', '.join(PROFILES)}"
        )
    extra = list(extra)
    given = {_name(arg) for arg in extra}
    args = [arg for arg in PROFILES[profile].args if _name(arg) not in given] + extra
    check(args, PROFILES[profile].required, profile)
    return args


def check(args: list, required=(), profile: str = "") -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(args)
    known = options.get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        raise BeamProfileError(
            f"Beam does not know the options {', '.join('--' + u for u in unknown)}"
        )
    missing = [name for name in required if not known.get(name)]
    if missing:
        raise BeamProfileError(
            f"Beam profile {profile!r} needs {', '.join(f'--{m}=...' for m in missing)}"
            " (give them with --beam-arg)"
        )
