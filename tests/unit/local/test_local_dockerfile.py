"""An image function runs locally from its build context, as its Dockerfile lays it out."""

from __future__ import annotations

from pathlib import Path

from local.dockerfile import read_image_layout
from local.template import Stack

ROOT = Path(__file__).resolve().parents[3]


def test_env_and_task_root_from_the_dockerfile(tmp_path: Path) -> None:
    for folder in ("fn/pkg", "shared/lib", "fn/model"):
        (tmp_path / folder).mkdir(parents=True)
    dockerfile = tmp_path / "fn" / "Dockerfile"
    dockerfile.write_text(
        "FROM public.ecr.aws/lambda/python:3.12\n"
        "# settings\n"
        "ENV A=1 \\\n"
        '    B="two words"\n'
        "ENV LEGACY value with spaces\n"
        "ENV MODEL_PATH=/opt/ml/model/weights.pt\n"
        "ENV MODEL_DIR=/opt/ml/model\n"
        "COPY fn/model/weights.pt /opt/ml/model/weights.pt\n"
        "COPY shared/lib ${LAMBDA_TASK_ROOT}/lib\n"
        "COPY fn/app.py ${LAMBDA_TASK_ROOT}/\n"
        "COPY --from=builder /x /var/task/x\n"
        "COPY fn/pkg ${LAMBDA_TASK_ROOT}/pkg\n"
        'CMD ["app.handler"]\n'
    )

    layout = read_image_layout(dockerfile, tmp_path)

    assert layout.environment == {
        "A": "1",
        "B": "two words",
        "LEGACY": "value with spaces",
        "MODEL_PATH": str(tmp_path / "fn/model/weights.pt"),
        "MODEL_DIR": "/opt/ml/model",  # only the file was copied, not the folder
    }
    assert layout.task_root_sources == (tmp_path / "shared", tmp_path / "fn")


def test_only_the_last_stage_makes_the_image(tmp_path: Path) -> None:
    (tmp_path / "fn" / "pkg").mkdir(parents=True)
    dockerfile = tmp_path / "fn" / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12\n"
        "FROM ${BASE_IMAGE} AS build\n"
        "ENV BUILD_ONLY=1\n"
        "COPY fn/requirements.txt fn/ca.pe[m] /opt/build/\n"
        "COPY fn/pkg ${LAMBDA_TASK_ROOT}/stale\n"
        "FROM ${BASE_IMAGE}\n"
        "COPY --from=build /opt/packages ${LAMBDA_TASK_ROOT}\n"
        "ENV MODE=final\n"
        "COPY fn/pkg ${LAMBDA_TASK_ROOT}/pkg\n"
    )

    layout = read_image_layout(dockerfile, tmp_path)

    assert layout.environment == {"MODE": "final"}
    assert layout.task_root_sources == (tmp_path / "fn",)


def test_template_image_function_runs_from_its_dockerfile_layout() -> None:
    stack = Stack(ROOT / "template.yaml")
    for config in stack.functions().values():
        if config.package_type != "Image":
            continue
        dockerfile = config.code_dir / "Dockerfile"
        if not dockerfile.exists():
            continue
        env_names = {
            line.split()[1].split("=")[0]
            for line in dockerfile.read_text().replace("\\\n", " ").splitlines()
            if line.startswith("ENV ")
        }
        assert env_names <= set(config.image_environment)
        assert config.python_path  # the shared code the image copies next to the handler
        assert config.code_dir not in config.python_path
