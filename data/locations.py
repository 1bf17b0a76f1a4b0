"""Where a dataset's files are found when a command is not told: one rule for every command.

First an explicit location (a flag or a config value), then the dataset's environment variable,
then the `../shared/data` folder beside the repository (how the project's machines are laid
out), then the embedded sample if the dataset has one. The chosen location and why are returned
so that the command can print them: falling back to a sample must be seen, not only logged.
"""

import os
from pathlib import Path

from data.errors import DatasetError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def locate(
    explicit: str | None,
    env_var: str,
    shared_subdir: str | None = None,
    sample: Path | None = None,
    what: str = "data",
) -> tuple[Path, str]:
    """(path, how it was chosen). Raises DatasetError naming every place looked at when there is
    neither a location nor a sample, or when a given location does not exist."""
    if explicit:
        return _existing(explicit, "given"), "given"  # --data-dir or dataset_args.path
    if os.environ.get(env_var):
        return _existing(os.environ[env_var], f"${env_var}"), f"${env_var}"
    if shared_subdir and (SHARED_DATA / shared_subdir).exists():
        return SHARED_DATA / shared_subdir, f"the shared data folder {SHARED_DATA}"
    if sample is not None:
        return sample, "the embedded sample"
    looked = f"no {what} given, ${env_var} is not set"
    if shared_subdir:
        looked += f" and {SHARED_DATA / shared_subdir} does not exist"
    raise DatasetError(
        looked + f"; pass its folder (dataset_args.path or --data-dir) or set ${env_var}"
    )


def _existing(path: str, how: str) -> Path:
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise DatasetError(f"{path} ({how}): no such file or directory")
    return resolved
