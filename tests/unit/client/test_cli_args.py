"""The CLI's argument handling, in process: what is a usage error (exit 2, one line on
stderr) before any request is made, the content type from a file's first bytes, metadata
and params from options, and the idempotency keys of `submit --idempotency-prefix`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segjob.cli import EXIT_USAGE, _idempotency_key, _metadata, _params, build_parser, main
from segjob.client import InvalidInput, image_content_type

ROOT = Path(__file__).resolve().parents[3]
IMAGE = ROOT / "samples" / "shapes-1.jpg"
# Nothing listens there: a run that made a request would end in exit 3 (ConnectionError).
NO_API = ["--api-url", "http://127.0.0.1:9"]
# The first bytes of each format (what image_content_type reads).
HEADS = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "image/bmp": b"BM\x36\x00\x0c\x00\x00\x00",
    "image/tiff": b"II*\x00\x08\x00\x00\x00",
}


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


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
        argv = [*NO_API, *argv]

    code, out, err = run(capsys, argv)

    assert code == EXIT_USAGE
    assert message in err
    assert len(err.splitlines()) == 1 and out == ""


def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """argv -> the message of each bad local input (files made in ``tmp``)."""
    gif = tmp / "cat.gif"
    gif.write_bytes(b"GIF89a\x01\x00\x01\x00\x80\x00\x00")
    renamed_gif = tmp / "cat.jpg"  # the name says JPEG, the bytes say GIF
    renamed_gif.write_bytes(gif.read_bytes())
    empty = tmp / "empty.png"
    empty.touch()
    pdf = tmp / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    readme = ROOT / "README.md"
    return {
        "text file": ([str(readme)], f"{readme}: not an image file (use JPEG, PNG, WebP, BMP or TIFF)"),
        "gif": ([str(gif)], f"{gif}: GIF images are not supported"),
        "gif named .jpg": ([str(renamed_gif)], "GIF images are not supported"),
        "pdf": ([str(pdf)], "PDF images are not supported"),
        "empty file": ([str(empty)], f"{empty}: the file is empty"),
        "missing file": ([str(tmp / "nope.jpg")], "nope.jpg: no such file"),
        "directory": ([str(tmp)], f"{tmp}: is a directory, not an image file"),
        "one bad among good": ([str(IMAGE), str(gif)], "cat.gif: GIF images are not supported"),
        "every bad file named": ([str(gif), str(empty)], "BMP or TIFF); " + f"{empty}: the file is empty"),
        "bad number": ([str(IMAGE), "--conf", "high"], "argument --conf: invalid float value: 'high'"),
        "nan": ([str(IMAGE), "--conf", "nan"], "invalid job params: conf"),
        "infinite timeout": ([str(IMAGE), "--timeout", "inf"], "expected a positive number"),
        "metadata not JSON": ([str(IMAGE), "--metadata", "{camera: north}"], "is not valid JSON"),
        "metadata JSON list": ([str(IMAGE), "--metadata", "{}", "--metadata", "[1]"], "key=value or a JSON"),
        "metadata without =": ([str(IMAGE), "--metadata", "camera"], "expected key=value or a JSON object"),
        "metadata empty key": ([str(IMAGE), "--metadata", "=x"], "expected key=value"),
        "metadata nested": ([str(IMAGE), "--metadata", '{"a": {"b": 1}}'], "invalid --metadata: metadata.a"),
        "metadata too many": (
            [str(IMAGE), "--metadata", json.dumps({f"k{i}": i for i in range(17)})],
            "invalid --metadata: metadata: Dictionary should have at most 16 items",
        ),
        "metadata long value": ([str(IMAGE), "--metadata", "note=" + "x" * 1025], "at most 1024 characters"),
        "out is a file": ([str(IMAGE), "--wait", "--out", str(IMAGE)], "exists and is not a directory"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "text file", "gif", "gif named .jpg", "pdf", "empty file", "missing file", "directory",
        "one bad among good", "every bad file named", "bad number", "nan", "infinite timeout",
        "metadata not JSON", "metadata JSON list", "metadata without =", "metadata empty key",
        "metadata nested", "metadata too many", "metadata long value", "out is a file",
    ],
)  # fmt: skip
def test_every_bad_local_input_is_one_line_and_exit_2(capsys, tmp_path, case) -> None:
    args, message = bad_inputs(tmp_path)[case]

    code, out, err = run(capsys, [*NO_API, "submit", *args])

    assert code == EXIT_USAGE, err
    assert out == "" and len(err.splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--status", "DONE"], "argument --status: expected one of AWAITING_UPLOAD, RUNNING"),
        (["results"], "--out DIR and/or --html FILE"),
        (["results", "--html", "r.html"], "name the jobs (JOB_ID ...) or ask for --recent N"),
        (["results", "job_1", "--recent", "3", "--out", "o"], "not both"),
        (["results", "job_1", "--html", "."], "is a directory; name the report file"),
        (["results", "job_1", "--status", "FAILED", "--out", "o"], "--status goes with --recent N"),
        (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    ],
)
def test_other_commands_usage_errors(capsys, argv, message) -> None:
    code, out, err = run(capsys, [*NO_API, *argv])

    assert code == EXIT_USAGE and out == ""
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("content_type", sorted(HEADS))
def test_content_type_comes_from_the_bytes_not_the_name(tmp_path, content_type) -> None:
    misnamed = tmp_path / "photo.gif"
    misnamed.write_bytes(HEADS[content_type] + b"\x00" * 64)

    assert image_content_type(misnamed) == content_type


def test_riff_that_is_not_webp_is_refused(tmp_path) -> None:
    wav = tmp_path / "sound.webp"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")

    with pytest.raises(InvalidInput, match="not an image file"):
        image_content_type(wav)


def test_metadata_from_pairs_and_json_merged_in_order() -> None:
    metadata = _metadata(["camera=north", '{"run": 7, "ok": true}', "run=eight", "empty="])

    assert metadata == {"camera": "north", "run": "eight", "ok": True, "empty": ""}
    assert _metadata(None) is None


def test_retina_masks_and_tiling_become_job_params() -> None:
    args = build_parser().parse_args(
        ["submit", str(IMAGE), "--retina-masks", "--tile-size", "1024", "--tile-overlap", "0.3"]
    )

    assert _params(args) == {"tileSize": 1024, "tileOverlap": 0.3, "retinaMasks": True}


@pytest.mark.parametrize(
    ("flag", "params"),
    [([], {}), (["--agnostic-nms"], {"agnosticNms": True}), (["--no-agnostic-nms"], {"agnosticNms": False})],
)
def test_nms_across_classes_is_the_models_own_unless_asked(flag: list[str], params: dict) -> None:
    args = build_parser().parse_args(["submit", str(IMAGE), *flag])

    assert _params(args) == params


def test_list_status_is_case_insensitive() -> None:
    args = build_parser().parse_args(["list", "--status", "failed"])

    assert args.status.value == "FAILED"


def test_idempotency_keys_are_stable_header_safe_and_short(tmp_path) -> None:
    deep = tmp_path.joinpath(*["nested-folder"] * 30, "фото 写真.jpg")

    key = _idempotency_key("batch-7", deep)

    assert key == _idempotency_key("batch-7", deep)
    assert key != _idempotency_key("batch-7", deep.with_name("other.jpg"))
    assert key.startswith("batch-7-") and key.isascii() and len(key) <= 255


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
