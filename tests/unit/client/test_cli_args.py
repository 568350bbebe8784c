"""The CLI's argument handling, in process: what is a usage error (exit 2) before any
request is made, and the idempotency keys of `submit --idempotency-prefix`."""

from __future__ import annotations

from pathlib import Path

import pytest

from segjob.cli import EXIT_USAGE, _idempotency_key, _params, build_parser, main

IMAGE = Path(__file__)  # any existing file: these runs stop before reading it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", str(IMAGE), "--conf", "7"], "invalid job params: conf"),
        (["submit", str(IMAGE), "--imgsz", "100"], "imgsz: Input should be a multiple of 32"),
        (
            ["submit", str(IMAGE), "--tile-size", "128"],
            "tileSize: Input should be greater than or equal to 256",
        ),
        (["submit", str(IMAGE), "--tile-size", "1000"], "tileSize: Input should be a multiple of 32"),
        (
            ["submit", str(IMAGE), "--tile-size", "1024", "--tile-overlap", "0.9"],
            "tileOverlap: Input should be less",
        ),
        (["submit", str(IMAGE), "--classes", "1,circle"], "comma-separated class ids"),
        (["submit", str(IMAGE), "--concurrency", "0"], "positive number"),
        (["submit", str(IMAGE), "--out", "results"], "--out needs --wait"),
        (["list", "--limit", "-1"], "positive number"),
        (["--api-url", "localhost:3000", "status", "job_1"], "must be http(s)://"),
    ],
)
def test_usage_errors_exit_2_before_any_request(capsys, argv, message) -> None:
    if not argv[0].startswith("--"):
        argv = ["--api-url", "http://127.0.0.1:9", *argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)

    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_idempotency_keys_are_stable_header_safe_and_short(tmp_path) -> None:
    deep = tmp_path.joinpath(*["nested-folder"] * 30, "фото 写真.jpg")

    key = _idempotency_key("batch-7", deep)

    assert key == _idempotency_key("batch-7", deep)
    assert key != _idempotency_key("batch-7", deep.with_name("other.jpg"))
    assert key.startswith("batch-7-") and key.isascii() and len(key) <= 255


def test_tiling_options_become_job_params() -> None:
    args = build_parser().parse_args(["submit", str(IMAGE), "--tile-size", "1024", "--tile-overlap", "0.3"])

    assert _params(args) == {"tileSize": 1024, "tileOverlap": 0.3}


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("0", 0), ("3600", 3600), ("90m", 5400), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)],
)
def test_rotation_overlap_takes_seconds_or_units(given: str, seconds: int) -> None:
    args = build_parser().parse_args(["webhook", "rotate", "--overlap", given])
    assert args.overlap == seconds


@pytest.mark.parametrize("given", ["-1", "8d", "soon", "h", ""])
def test_rotation_overlap_out_of_range_is_a_usage_error(capsys, given: str) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["webhook", "rotate", "--overlap", given])
    assert exited.value.code == EXIT_USAGE
    assert "expected 0 to 604800 s" in capsys.readouterr().err
