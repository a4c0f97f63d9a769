"""`python -m unlearning …`: the engine's command line (DESIGN.md §Command line contract).

Exit code 0 on success; 2 with one line on stderr for anything the user can fix (a bad
file, an unknown model, a nonsense flag); never a traceback for a user error.
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .suites import SUITES
from .suites import get as get_suite


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see --help).")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be greater than 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' must be a finite number greater than 0")
    return value


def _common(p: argparse.ArgumentParser, model: bool = True, benchmark: bool = False) -> None:
    if model:
        p.add_argument("--model", required=not benchmark, help="hub id, local folder, or 'workshop' / 'workshop-oracle'"
                       + (" (default with --benchmark: its published target model)" if benchmark else ""))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--device-map", choices=["auto"], help="let accelerate place the model: sharded over the visible GPUs, "
                                                          "what does not fit offloaded to CPU memory (README: Several GPUs)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code to run (off by default)")


def _eval_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", type=_benchmark, help="a benchmark from the Hub instead of files: "
                   + ", ".join(SUITES) + " (its data, its target model as --model, its retain model as --oracle)")
    p.add_argument("--forget", help="forget file (.txt .md .jsonl .json .csv); required without --benchmark")
    p.add_argument("--retain", help="retain file; required without --benchmark")
    p.add_argument("--holdout", help="text the model never saw, same kind as forget (default: the workshop's)")
    p.add_argument("--general", help="general-knowledge QA for model utility (default: the workshop's)")
    p.add_argument("--paraphrased", help="the forget questions in wordings never trained, for the report's probes "
                                         "(default: the kit's for the kit's forget facts)")
    p.add_argument("--oracle", help="a model that never saw the forget set, for forget_quality")
    p.add_argument("--report", help="write the report JSON here")
    p.add_argument("--cache", metavar="DIR", help="keep the oracle's and the original model's evaluations in this folder "
                                                  "and reuse them when model, data and metrics are unchanged")


def _benchmark(text: str) -> str:
    try:
        return get_suite(text).name
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m unlearning", description="Unlearning Studio: make a language model forget.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("limits", help="print the limits on files, runs and the app")

    p = sub.add_parser("workshop", help="describe (build if missing) the offline workshop kit")
    p.add_argument("--build", action="store_true", help="rebuild the corpus and both models from scratch")

    p = sub.add_parser("teach", help="fine-tune a model so it knows the given data")
    _common(p)
    p.add_argument("--data", required=True, nargs="+", help="files to teach")
    p.add_argument("--replay", nargs="*", help="files mixed in so old knowledge stays (default for workshop: its own data)")
    p.add_argument("--out", required=True, help="folder for the taught model")

    from .kit.teach import TeachSettings
    from .methods import all_methods
    from .settings import add_flags

    add_flags(p, [TeachSettings])

    p = sub.add_parser("unlearn", help="make a model forget the forget set")
    p.add_argument("--method", required=True, help="one of: " + ", ".join(m.name for m in all_methods()))
    _common(p, benchmark=True)
    _eval_data(p)
    p.add_argument("--out", help="save the unlearned artifact (adapter or ECO guard) in this folder")
    p.add_argument("--no-before", action="store_true", help="skip the 'before' evaluation (faster)")
    add_flags(p, [m.Config for m in all_methods()])

    p = sub.add_parser("eval", help="measure a model (and optionally an unlearned artifact)")
    _common(p, benchmark=True)
    p.add_argument("--unlearned", help="an unlearning artifact folder (adapter or ECO guard)")
    _eval_data(p)

    p = sub.add_parser("attack", help="stress-test an unlearned artifact: relearning, quantization, paraphrases, prompts")
    _common(p)
    p.add_argument("--unlearned", required=True, help="the unlearning artifact folder to attack")
    p.add_argument("--forget", required=True, help="the forget file the artifact was made with")
    p.add_argument("--retain", required=True, help="the retain file")
    p.add_argument("--oracle", help="a model that never saw the forget set: attacked the same way, as the reference")
    p.add_argument("--paraphrased", help="held-out wordings of the forget questions (default: the kit's for the kit's "
                                         "forget file, else built-in rewording templates)")
    p.add_argument("--report", required=True, help="write the report JSON (its 'robustness' block) here")
    from .attacks import AttackSettings

    add_flags(p, [AttackSettings])

    p = sub.add_parser("chat", help="answer one prompt with the original (and the unlearned) model")
    _common(p)
    p.add_argument("--unlearned", help="an unlearning artifact folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=_positive_int, default=None, help="at most this many tokens (default: limits.CHAT_NEW_TOKENS)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return run_command(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_limits(args) -> int:
    from .limits import describe

    rows = describe()
    width = max(len(what) for what, _ in rows)
    for what, value in rows:
        print(f"{what:<{width}}  {value}")
    return 0


def cmd_workshop(args) -> int:
    from .kit import workshop

    if args.build or not workshop.is_built():
        workshop.build()
    info = workshop.describe()
    print("Workshop kit:", workshop.WORKSHOP_DIR)
    print("  examples:", ", ".join(f"{k} {v}" for k, v in info["counts"].items()),
          "| people:", ", ".join(f"{k} {v}" for k, v in info["people"].items()))
    largest, size = max(((n, s / 1e6) for n, s in info["files"].items()), key=lambda x: x[1])
    print(f"  largest file: {largest} ({size:.1f} MB)")
    print("  ROUGE-L recall of greedy answers (↑ = knows the facts; *_paraphrased = held-out wordings,"
          " forget_bios = 'Tell me about NAME.', forget_bios_held_out = 'What do you know about NAME?'):")
    for name, r in info["recall"].items():
        print(f"    {name:16s} " + "   ".join(f"{k} {v:.3f}" for k, v in r.items()))
    failed = [what for what, ok in workshop.checks(info) if not ok]
    for what, ok in workshop.checks(info):
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    return 1 if failed else 0


# Each command's work lives in commands.py, imported only when a command runs (so --help and
# argument errors stay fast).
COMMANDS = {"teach": "teach", "unlearn": "unlearn", "eval": "evaluate_command", "attack": "attack", "chat": "chat"}


def run_command(args) -> int:
    if args.command in ("workshop", "limits"):
        return cmd_workshop(args) if args.command == "workshop" else cmd_limits(args)
    from . import commands

    getattr(commands, COMMANDS[args.command])(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
