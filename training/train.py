"""Train, quantize and evaluate a hashtag model with the bundled fastText CLI.

    python -m training.train --train posts.csv [--valid valid.csv] --output my.bin
    python -m training.train                     # the default model, from the bundled Debian data

Input: CSV with a header (columns `text` and `hashtags` or `tags`, optional `id` and `group`),
JSON lines ({"text": "...", "hashtags": ["#a", "b"]}), fastText's `__label__a text` format, or
the 4-column TSV of data/; gzipped or not; the format comes from the name and the content, or
--format. Tags are separated by whitespace, commas, semicolons or `|`, `#` optional, or written
as `<a><b>` (Stack Exchange's exports) or `["a", "b"]`. CSV column names match in any case. Tags that
cannot be hashtags and rows that cannot be read are dropped (--strict: the file is refused, every bad
row named as file:line: what is wrong, before anything is trained). Rows with no words or
no tags, repeated texts and tags seen fewer than --min-tag-count times are dropped, each rule
with one line saying so. Without --valid, a seeded split (by the `group` column when there is
one) keeps about 20% for validation; the bundled Debian data is used only when --train is not given.

Writes OUTPUT (the model) and, next to it, OUTPUT-stem.metrics.json, .report.md and .pr.png.
Training text is cleaned with text_cleaning.clean_text, as the endpoint cleans requests.
If the preset has a `pretrain` entry, word vectors are first trained (`fasttext skipgram`
or `cbow`, with the supervised `dim`) on the cleaned texts of the TRAINING split only, and
the supervised model starts from them (`-pretrainedVectors`).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from text_cleaning import clean_text
from training import fasttext_cli as ft
from training import metrics as mt
from training import prepare, quantization
from training.dataset import FORMATS, Example, read_examples
from training.presets import auto_preset, get_preset
from training.report import write_pr_figure, write_report

THREADS = 2
PREDICT_K = 50  # the endpoint's MAX_K: the deepest answer callers can ask for
TOP_LABELS = 20
THRESHOLDS = [round(i * 0.05, 2) for i in range(0, 20)] + [0.99]


def log(message: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_value(text: str):
    """'10' -> 10, '0.5' -> 0.5, 'true'/'false' -> bool, 'none' -> None, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"override {item!r} must look like NAME=VALUE")
        out[name.lstrip("-")] = parse_value(value)
    return out


def read_vec_dim(path: Path) -> int:
    """The dimension from a .vec file's `<words> <dim>` header line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().split()
    if len(header) != 2 or not all(h.isdigit() for h in header):
        raise SystemExit(f"{path} is not a .vec file: its first line must be '<words> <dim>'")
    return int(header[1])


def write_atomically(source: Path, destination: Path) -> None:
    """Copy `source` over `destination` in one rename: a server never sees half a model."""
    partial = destination.with_name(f".{destination.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def output_paths(output: Path) -> dict:
    stem = output.with_suffix("") if output.suffix else output
    return {
        "model": output,
        "metrics": stem.with_name(stem.name + ".metrics.json"),
        "report": stem.with_name(stem.name + ".report.md"),
        "figure": stem.with_name(stem.name + ".pr.png"),
    }


def evaluate(binary: Path, model: Path, text_file: Path, gold: list[list[str]]) -> tuple[dict, list]:
    """Headline metrics of `model` on the cleaned texts, and its top-PREDICT_K answers."""
    predictions = ft.predict_prob(binary, model, text_file, PREDICT_K)
    return mt.headline(gold, predictions), predictions


def cross_check(binary: Path, model: Path, labelled_file: Path, gold: list[list[str]],
                predictions: list, known: set[str]) -> dict:
    """Compare with `fasttext test`, which ignores gold labels the model does not know."""
    ft1 = ft.fasttext_test(binary, model, labelled_file, 1)
    ft5 = ft.fasttext_test(binary, model, labelled_file, 5)
    kept = [(sorted(set(g) & known), p) for g, p in zip(gold, predictions) if set(g) & known]
    ours = mt.headline([g for g, _ in kept], [p for _, p in kept])
    result = {"n": ft1["n"], "p_at_1": ft1["precision"], "r_at_5": ft5["recall"],
              "python_p_at_1": ours["p_at_1"], "python_r_at_5": ours["r_at_5"]}
    p1_gap, r5_gap = ft1["precision"] - ours["p_at_1"], ft5["recall"] - ours["r_at_5"]
    # A tie at the cut-off rank lets fastText's k=1 or k=5 answer keep another label than the
    # k=50 answer does: each such text can move one correct label in or out.
    ties1, ties5 = (sum(1 for _, p in kept if tied_at_rank(p, k)) for k in (1, 5))
    slack = 6e-4  # fastText prints 3 significant digits
    gold_labels = sum(len(g) for g, _ in kept)
    if ft1["n"] != len(kept) or abs(p1_gap) > ties1 / len(kept) + slack or abs(r5_gap) > ties5 / gold_labels + slack:
        log(f"WARNING: fasttext test disagrees with the Python metrics: {result}")
    elif abs(p1_gap) > slack or abs(r5_gap) > slack:
        log(f"  fasttext test differs by {p1_gap:+.4f} P@1 and {r5_gap:+.4f} R@5, within what ties explain: "
            f"{ties1} texts tie at rank 1 and {ties5} at rank 5, and fastText orders tied hashtags differently "
            f"for k=1 and k=5 than for k={PREDICT_K}; the metrics here use the k={PREDICT_K} order the endpoint serves")
    return result


def tied_at_rank(answer: list[tuple[str, float]], k: int) -> bool:
    """Whether the k-th and the next label of an answer have the same printed probability."""
    return len(answer) > k and answer[k - 1][1] == answer[k][1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train", type=Path, help="labelled texts (default: the bundled Debian data, data/train.tsv.gz)")
    data.add_argument("--valid", type=Path, help="validation texts in any of the formats (default: a split of --train)")
    data.add_argument("--format", choices=FORMATS, help="the input format, when the name and content do not tell")
    data.add_argument("--text-column", help="CSV column or JSON key of the text (default: text); several, "
                                            "joined in order, as 'Title,Body'")
    data.add_argument("--tags-column", help="CSV column or JSON key of the tags (default: hashtags, else tags)")
    data.add_argument("--group-column", help="CSV column or JSON key keeping related rows on one side of the split "
                                             "(default: group, when there is one)")
    data.add_argument("--min-tag-count", type=int, default=None, metavar="N",
                      help=f"drop tags seen fewer than N times in training (default: "
                           f"{prepare.DEFAULT_MIN_TAG_COUNT}; 1 for the bundled data)")
    data.add_argument("--split-seed", type=int, default=prepare.SPLIT_SEED,
                      help="seed of the train/validation split when there is no --valid")
    data.add_argument("--strict", action="store_true",
                      help="refuse a file with a tag that cannot be a hashtag or a row that cannot be read, "
                           "naming every one, instead of dropping them")
    parser.add_argument("--preset", help="auto (sized from the data; the default with --train), default (the "
                                         "Debian model's; the default without --train) or seed")
    parser.add_argument("--output", type=Path, default=Path("model.bin"))
    parser.add_argument("--pretrained-vectors", type=Path,
                        help="a .vec file for -pretrainedVectors; its dimension overrides the preset's dim")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a fastText supervised parameter of the preset (repeatable)")
    parser.add_argument("--quantize-set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a fastText quantize parameter of the preset (repeatable)")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a word-vector pretraining parameter of the preset (repeatable)")
    parser.add_argument("--no-pretrain", action="store_true",
                        help="skip the preset's word-vector pretraining step")
    parser.add_argument("--no-quantize", action="store_true", help="ship the model unquantized")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--build-dir", type=Path, help="keep intermediate files here (default: a temp dir)")
    return parser


def data_source(args: argparse.Namespace) -> dict:
    """Where the examples come from and how they are split: recorded in the metrics, reused by evaluate."""
    own = args.train is not None
    return {
        "train": str(args.train or ft.DEFAULT_TRAIN),
        "valid": str(args.valid) if args.valid else None if own else str(ft.DEFAULT_VALID),
        "format": args.format,
        "columns": {"text": args.text_column, "tags": args.tags_column, "group": args.group_column},
        "min_tag_count": args.min_tag_count if args.min_tag_count is not None
        else prepare.DEFAULT_MIN_TAG_COUNT if own else 1,
        "split_seed": args.split_seed,
        "strict": args.strict,
    }


def choose_preset(name: str | None, own_data: bool, train: list[Example], label_count: int) -> tuple[str, dict]:
    """The preset asked for, or `auto` for the user's data and `default` for the bundled data."""
    name = name or ("auto" if own_data else "default")
    if name != "auto":
        return name, get_preset(name)
    lines = [clean_text(e.text).split() for e in train]
    words = {w for line in lines for w in line}
    bigrams = {pair for line in lines for pair in zip(line, line[1:])}
    preset, reasons = auto_preset(len(train), label_count, sum(map(len, lines)), len(words), len(bigrams))
    log("preset 'auto' for this data: " + "; ".join(reasons))
    return name, preset


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)

    started = time.monotonic()
    binary = ft.fasttext_binary()
    source = data_source(args)
    train_examples, valid_examples, notes = prepare.load(source)
    label_counts = Counter(label for ex in train_examples for label in ex.labels)
    for line in notes:
        log(line)
    prepare.require_examples(train_examples, valid_examples)
    for line in prepare.summary(train_examples, valid_examples):
        log(line)
    preset_name, preset = choose_preset(args.preset, args.train is not None, train_examples, len(label_counts))
    params = {**preset["train"], **parse_overrides(args.set)}
    qparams = preset.get("quantize")
    if args.quantize_set:
        qparams = {**(qparams or {}), **parse_overrides(args.quantize_set)}
    if args.no_quantize:
        qparams = None
    fasttext_qparams = quantization.fasttext_options(qparams)
    pparams = preset.get("pretrain")
    if args.pretrain_set:
        pparams = {**(pparams or {}), **parse_overrides(args.pretrain_set)}
    if args.no_pretrain or args.pretrained_vectors:
        pparams = None
    if pparams is not None:
        pparams = {**pparams, "dim": params.get("dim", 100)}
    if args.pretrained_vectors:
        dim = read_vec_dim(args.pretrained_vectors)
        if params.get("dim") != dim:
            log(f"--pretrained-vectors has dimension {dim}: using -dim {dim} instead of {params.get('dim')}")
        params["dim"] = dim
        params["pretrainedVectors"] = str(args.pretrained_vectors.resolve())
    paths = output_paths(args.output)
    paths["model"].parent.mkdir(parents=True, exist_ok=True)

    build_ctx = tempfile.TemporaryDirectory(prefix="fasttext-train-") if args.build_dir is None else None
    build = Path(build_ctx.name) if build_ctx else args.build_dir
    build.mkdir(parents=True, exist_ok=True)
    try:
        log(f"preset {preset_name!r}: pretrain {pparams}; supervised {' '.join(ft.params_to_args(params))}; "
            f"quantize {qparams}")
        log(f"step 1/6: writing cleaned training files into {build}")
        train_file, valid_file, valid_text = build / "train.txt", build / "valid.txt", build / "valid.text.txt"
        ft.write_training_file(train_examples, train_file)
        ft.write_training_file(valid_examples, valid_file)
        ft.write_text_file(valid_examples, valid_text)
        gold = [ex.labels for ex in valid_examples]

        pretrain_seconds = 0.0
        if pparams is not None:
            # `corpus` (optional): a dataset file of further texts, pretrained on after the training texts.
            corpus = pparams.get("corpus")
            corpus_examples = list(read_examples(ft.ROOT / corpus)) if corpus else []
            log(f"step 2/6: fasttext {pparams.get('model', 'skipgram')} word vectors on the training texts "
                f"and {len(corpus_examples)} texts of {corpus or 'no further corpus'}")
            train_text = build / "train.text.txt"
            ft.write_text_file(train_examples + corpus_examples, train_text)
            vectors = build / "vectors"
            try:
                pretrain_seconds = ft.pretrain(binary, train_text, vectors,
                                               {k: v for k, v in pparams.items() if k != "corpus"},
                                               threads=args.threads)
            except RuntimeError as e:
                # fastText 0.9.3 can abort on NaN here for a very small corpus; the supervised
                # model trains fine without the vectors, so carry on rather than fail the run.
                log(f"  word-vector pretraining failed, continuing without pretrained vectors: {e}")
                pparams = None
            else:
                vectors.with_suffix(".bin").unlink(missing_ok=True)  # only the .vec is needed
                params["pretrainedVectors"] = str(vectors.with_suffix(".vec").resolve())
                log(f"  trained in {pretrain_seconds:.1f} s: {vectors.with_suffix('.vec')}")
        else:
            log("step 2/6: no word-vector pretraining")

        log("step 3/6: fasttext supervised")
        prefix = build / "model"
        supervised_seconds = ft.train(binary, train_file, prefix, params, threads=args.threads)
        unquantized = prefix.with_suffix(".bin")
        log(f"  trained in {supervised_seconds:.1f} s: {unquantized.stat().st_size:,} bytes")

        log("step 4/6: evaluating the unquantized model on validation")
        before, predictions = evaluate(binary, unquantized, valid_text, gold)
        log("  " + ", ".join(f"{k} {v:.4f}" for k, v in before.items()))

        quantize_seconds = 0.0
        final_model = unquantized
        if qparams is not None:
            log("step 5/6: fasttext quantize")
            quantize_seconds = ft.quantize(binary, train_file, prefix, fasttext_qparams, threads=args.threads)
            final_model = prefix.with_suffix(".ftz")
            log(f"  quantized in {quantize_seconds:.1f} s: {final_model.stat().st_size:,} bytes")
            if qparams.get(quantization.REFIT_NORMS):
                log(f"  norm codebook refitted: {quantization.refit_norms(unquantized, final_model)}")
            final, predictions = evaluate(binary, final_model, valid_text, gold)
            log("  " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
        else:
            log("step 5/6: no quantization in this preset")
            final = before

        log("step 6/6: writing the model, metrics, report and figure")
        write_atomically(final_model, paths["model"])
        check = cross_check(binary, final_model, valid_file, gold, predictions, set(label_counts))
        training_seconds = time.monotonic() - started
        metrics = {
            "preset": preset_name,
            "data": source,
            "data_notes": notes,
            "model": str(paths["model"]),
            "model_bytes": paths["model"].stat().st_size,
            "unquantized_bytes": unquantized.stat().st_size,
            "quantized": qparams is not None,
            "labels": len(label_counts),
            "train_examples": len(train_examples),
            "valid_examples": len(valid_examples),
            "p_at_1": final["p_at_1"],
            "p_at_5": final["p_at_5"],
            "r_at_5": final["r_at_5"],
            "p_at_1_unquantized": before["p_at_1"],
            "r_at_5_unquantized": before["r_at_5"],
            "quantization_cost_p_at_1": before["p_at_1"] - final["p_at_1"],
            "validation": final,
            "validation_unquantized": before,
            "fasttext_test": check,
            "training_seconds": training_seconds,
            "pretrain_seconds": pretrain_seconds,
            "pretrain_params": pparams,
            "supervised_seconds": supervised_seconds,
            "quantize_seconds": quantize_seconds,
            "threads": args.threads,
            "params": params,
            "quantize_params": qparams,
            "train_args": ft.params_to_args(params),
            "quantize_args": ft.params_to_args({k: v for k, v in fasttext_qparams.items() if not isinstance(v, bool)})
            + [f"-{k}" for k, v in fasttext_qparams.items() if v is True],
        }
        paths["metrics"].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        frequent = [label for label, _ in label_counts.most_common(TOP_LABELS)]
        curve = mt.threshold_curve(gold, predictions, THRESHOLDS, k=PREDICT_K)
        write_report(paths["report"], metrics,
                     mt.per_label(gold, predictions, frequent, k=5, threshold=0.0),
                     mt.per_label(gold, predictions, frequent, k=5, threshold=0.5),
                     curve, paths["figure"].name)
        write_pr_figure(paths["figure"], curve,
                        f"preset {preset_name}: P@1 {final['p_at_1']:.3f}, R@5 {final['r_at_5']:.3f}, "
                        f"{metrics['model_bytes'] / 2**20:.2f} MiB")
        log(f"done in {time.monotonic() - started:.1f} s: {paths['model']} ({metrics['model_bytes']:,} bytes), "
            f"P@1 {final['p_at_1']:.4f} (unquantized {before['p_at_1']:.4f}), P@5 {final['p_at_5']:.4f}, "
            f"R@5 {final['r_at_5']:.4f}")
        for key in ("metrics", "report", "figure"):
            log(f"  wrote {paths[key]}")
        return metrics
    finally:
        if build_ctx:
            build_ctx.cleanup()


if __name__ == "__main__":
    main()
