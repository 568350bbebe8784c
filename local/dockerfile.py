"""What a container-image function's Dockerfile means for running it without Docker.

Local mode runs the function's code from the build context instead of the image, so it
reads two things from the Dockerfile: the ``ENV`` variables the image sets (with paths
the image ``COPY``s from the context translated to their local source), and the folders
whose contents the image copies into ``${LAMBDA_TASK_ROOT}`` (the import roots). In a
multi-stage Dockerfile only the last stage is the image.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

LOG = logging.getLogger(__name__)

# What the AWS Lambda base images define.
BASE_IMAGE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class ImageLayout:
    environment: dict[str, str] = field(default_factory=dict)
    # Local folders whose copies make up the image's task root (import roots).
    task_root_sources: tuple[Path, ...] = ()


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\r?\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def _expand(value: str, env: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), value)


def read_image_layout(dockerfile: Path, context: Path) -> ImageLayout:
    env = dict(BASE_IMAGE_ENV)
    image_env: dict[str, str] = {}
    copies: list[tuple[PurePosixPath, Path]] = []  # (path in the image, local source)
    for keyword, rest in _instructions(dockerfile.read_text(encoding="utf-8")):
        if keyword == "FROM":  # a new stage: what earlier stages set is not in the image
            env, image_env, copies = dict(BASE_IMAGE_ENV), {}, []
        elif keyword == "ENV":
            words = shlex.split(rest)
            pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            for name, value in pairs:
                env[name] = image_env[name] = _expand(value, env)
        elif keyword in ("COPY", "ADD"):
            words = [
                w for w in shlex.split(rest) if not w.startswith("--chown") and not w.startswith("--chmod")
            ]
            if any(w.startswith("--from") for w in words) or len(words) < 2:
                continue
            *sources, destination = (_expand(w, env) for w in words)
            for source in sources:
                local = (context / source).resolve()
                target = PurePosixPath(destination)
                if destination.endswith("/") or len(sources) > 1:
                    target = target / local.name
                copies.append((target, local))
    task_root = PurePosixPath(env["LAMBDA_TASK_ROOT"])
    roots: list[Path] = []
    for target, local in copies:
        if target.parent == task_root and target.name == local.name and local.parent not in roots:
            roots.append(local.parent)
    return ImageLayout(
        environment={name: _local_path(value, copies) for name, value in image_env.items()},
        task_root_sources=tuple(roots),
    )


def _local_path(value: str, copies: list[tuple[PurePosixPath, Path]]) -> str:
    """A path inside the image, as the local file it was copied from (else unchanged)."""
    if not value.startswith("/"):
        return value
    path = PurePosixPath(value)
    for target, local in copies:
        if path == target or target in path.parents:
            return str(local / path.relative_to(target))
    return value
