"""The `diffaug` command: `diffaug predict MODEL_DIR FILES...` labels audio files with a trained classifier."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

PREDICT_HELP = """Label audio files (WAV, FLAC, ...: any sample rate, sample width and channel count) with a
trained classifier folder, results/models/{split}/{arm}/seed{seed}/. Prints a row per file: the
predicted class and the probability of each class. A file that cannot be used (unreadable, empty,
silent, ...) is named on stderr with its problem and left out of the table; the others are still
labelled, and the exit status is 1."""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="diffaug", description="Diffusion-augmented audio classification.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict", help="label audio files with a trained classifier", description=PREDICT_HELP
    )
    predict.add_argument(
        "model_dir", metavar="MODEL_DIR", help="a trained classifier folder (model.json, model.safetensors)"
    )
    predict.add_argument("files", metavar="FILES", nargs="+", help="audio files to label")
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--format", choices=("table", "csv"), help="table (default) or CSV with a header")
    output.add_argument("--csv", dest="format", action="store_const", const="csv", help="the same as --format csv")
    predict.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to compute (auto: a GPU if there is one)",
    )
    predict.set_defaults(format="table", run=run_predict)
    return main


def run_predict(args: argparse.Namespace) -> int:
    """Print the labels of args.files. Exit status 0 when every file was labelled, 1 when some could
    not be, 2 when the classifier folder or the device cannot be used."""
    from .devices import resolve_device
    from .predict import TrainedClassifier

    try:
        resolve_device(args.device, "--device")
        classifier = TrainedClassifier.load(args.model_dir)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"diffaug predict: error: {error}", file=sys.stderr)
        return 2
    table, failed = classifier.label(args.files, args.device)
    for error in failed:
        print(f"diffaug predict: {error}", file=sys.stderr)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False, float_format="%.6f")
    elif len(table):
        print(table.to_string(index=False, float_format=lambda p: f"{p:.3f}"))
    if failed:
        print(f"diffaug predict: {len(failed)} of {len(args.files)} file(s) not labelled", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
