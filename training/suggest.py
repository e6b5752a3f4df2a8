"""Suggest hashtags for texts from the command line, with the endpoint's own code.

    python -m training.suggest --model models/mine.bin "How do I close a Go channel?"
    python -m training.suggest --model models/mine.bin --k 10 --exclude-used < texts.txt

Prints one JSON line per text, in order: what POST /recommendations answers for it
({"hashtags_already_used": [...], "hashtags_recommended": [...]}). The texts come from the
arguments, else one per line of standard input. Every text and option is checked as the
endpoint checks them, and every bad one is reported (text N: what is wrong; N counts the
arguments or the lines) before anything is suggested. FASTTEXT_BINARY and
PREDICT_TIMEOUT_SECONDS work as in the function's environment.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from contract import DEFAULT_K, MAX_K, MAX_TEXTS, InvalidRequest, ModelUnavailable, RecommendationRequest, parse_request
from recommender import Recommender
from training.fasttext_cli import ROOT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="texts to suggest hashtags for (default: the lines of stdin)")
    parser.add_argument("--model", type=Path, default=ROOT / "model.bin", help="a fastText model (default: model.bin)")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help=f"hashtags per text, 1 to {MAX_K} (default: {DEFAULT_K})")
    parser.add_argument("--threshold", type=float, default=0.0, help="the lowest probability shown, 0 to 1")
    parser.add_argument("--exclude-used", action="store_true", help="leave out hashtags the text already has")
    return parser.parse_args(argv)


def text_problem(text: str) -> str | None:
    """What the endpoint would say is wrong with the text, or None."""
    try:
        parse_request({"text": text})
    except InvalidRequest as e:
        return e.message
    return None


def requests_for(texts: list[str], options: dict) -> list[RecommendationRequest]:
    """The texts as endpoint requests of up to MAX_TEXTS each; exits naming every bad text or option."""
    try:
        parse_request({"text": "-", **options})  # the options alone, so that a bad one is said once
    except InvalidRequest as e:
        raise SystemExit(f"error: {e.message}") from None
    errors = [f"text {n}: {problem}" for n, text in enumerate(texts, start=1) if (problem := text_problem(text))]
    if errors:
        raise SystemExit("error: " + "\n".join(errors))
    return [parse_request({"texts": texts[i:i + MAX_TEXTS], **options}) for i in range(0, len(texts), MAX_TEXTS)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"error: {args.model}: no such model; train one with 'make train DATA=... MODEL=...'")
    texts = args.texts or sys.stdin.read().splitlines()
    if not texts:
        raise SystemExit("error: no texts: give them as arguments or one per line on stdin")
    requests = requests_for(texts, {"k": args.k, "threshold": args.threshold, "exclude_used": args.exclude_used})
    os.environ["MODEL_PATH"] = str(args.model.resolve())  # --model, not a model in S3
    os.environ.pop("MODEL_S3_URI", None)
    recommender = Recommender.from_environment()
    try:
        for request in requests:
            for result in recommender.recommend(request):
                print(json.dumps(result, ensure_ascii=False))
    except ModelUnavailable as e:
        raise SystemExit(f"error: {e}") from None
    finally:
        recommender.close()


if __name__ == "__main__":
    main()
