"""Settings shared by the patches; set once by server.main() (or a test) before use."""

from __future__ import annotations

import dataclasses

# The moto release the patches reach into; any other version is refused (see check_moto).
MOTO_VERSION = "5.2.5"
REGION = "us-east-1"
# CloudFormation's default ServiceTimeout for a custom resource, seconds.
DEFAULT_SERVICE_TIMEOUT_S = 3600


@dataclasses.dataclass
class Settings:
    """Where the local AWS listens and what replaces the parts it cannot run."""

    port: int = 5000
    # The folder every function's EFS mount (FileSystemConfigs) stands for.
    efs_dir: str = ""
    # Upper bound on a custom resource's ServiceTimeout, seconds: the local AWS waits
    # min(template's ServiceTimeout, this) for an answer that never comes, where
    # CloudFormation would wait the whole ServiceTimeout.
    max_service_timeout_s: float = 5.0


SETTINGS = Settings()


def check_moto() -> None:
    """Refuse any moto but the one the patches were written against."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise SystemExit(
            f"error: the local AWS patches moto {MOTO_VERSION}, found {moto.__version__}; "
            "install the venv with scripts/lib/tools.sh"
        )
