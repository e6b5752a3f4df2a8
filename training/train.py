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
import tempfile
import time
from collections import Counter
from pathlib import Path

from text_cleaning import clean_text
from training import calibration, prepare, size_budget
from training import fasttext_cli as ft
from training import metrics as mt
from training.baseline import baseline_predictions
from training.dataset import FORMATS, Example
from training.learners import Candidate, DataShape, fasttext_supervised
from training.learners.linear import LinearLearner
from training.model_file import FastTextModel, write_model
from training.presets import auto_preset, get_preset
from training.progress import logger
from training.report import write_pr_figure, write_report
from training.validation import PREDICT_K, Validation, criterion

THREADS = 2
TOP_LABELS = 20
THRESHOLDS = [round(i * 0.05, 2) for i in range(0, 20)] + [0.99]


log = logger("train")


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
    parser.add_argument("--learner", choices=("auto", "fasttext", "linear"), default="auto",
                        help="auto (default): fastText and the linear learner's candidates, the best on validation "
                             "wins; fasttext or linear: only that learner")
    parser.add_argument("--size-budget", type=float, default=size_budget.DEFAULT_BUDGET / size_budget.MIB,
                        metavar="MIB", help="the largest model file written, in MiB (default: 10)")
    parser.add_argument("--baseline", action="store_true",
                        help="also fit the TF-IDF + logistic regression baseline on the same split and report it "
                             "beside the candidates")
    parser.add_argument("--no-refit", action="store_true",
                        help="ship the winner as fitted on the training split, not refitted on all rows")
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
    parser.add_argument("--no-quantize", action="store_true", help="ship the model unquantized, whatever its size")
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


def choose_preset(name: str | None, own_data: bool, shape: DataShape) -> tuple[str, dict]:
    """The preset asked for, or `auto` for the user's data and `default` for the bundled data."""
    name = name or ("auto" if own_data else "default")
    if name != "auto":
        return name, get_preset(name)
    preset, reasons = auto_preset(shape.examples, shape.labels, shape.tokens, shape.words, shape.bigrams)
    log("preset 'auto' for this data: " + "; ".join(reasons))
    return name, preset


def fasttext_candidate(args: argparse.Namespace, shape: DataShape) -> Candidate:
    """fastText with the preset asked for (or chosen for the data) and the command line's overrides."""
    preset_name, preset = choose_preset(args.preset, args.train is not None, shape)
    params = {**preset["train"], **parse_overrides(args.set)}
    qparams = preset.get("quantize")
    if args.quantize_set:
        qparams = {**(qparams or {}), **parse_overrides(args.quantize_set)}
    pparams = preset.get("pretrain")
    if args.pretrain_set:
        pparams = {**(pparams or {}), **parse_overrides(args.pretrain_set)}
    if args.no_pretrain or args.pretrained_vectors:
        pparams = None
    if args.pretrained_vectors:
        dim = read_vec_dim(args.pretrained_vectors)
        if params.get("dim") != dim:
            log(f"--pretrained-vectors has dimension {dim}: using -dim {dim} instead of {params.get('dim')}")
        params["dim"] = dim
        params["pretrainedVectors"] = str(args.pretrained_vectors.resolve())
    return fasttext_supervised.candidate(preset_name, {"train": params, "pretrain": pparams, "quantize": qparams})


def data_shape(train: list[Example], label_count: int) -> DataShape:
    lines = [clean_text(e.text).split() for e in train]
    lines_with = Counter(x for line in lines for x in {*line, *zip(line, line[1:])})
    return DataShape(
        examples=len(train), labels=label_count, tokens=sum(map(len, lines)),
        words=sum(1 for x in lines_with if isinstance(x, str)),
        bigrams=sum(1 for x in lines_with if isinstance(x, tuple)),
        recurring=sum(1 for n in lines_with.values() if n >= 2),
    )


def candidates_for(args: argparse.Namespace, shape: DataShape,
                   linear_learner: LinearLearner) -> tuple[list[Candidate], list[str]]:
    """The candidates --learner asks for (fastText, the linear learner's, or both when they fit the
    data and the time budget), and what was decided about the linear learner."""
    found, notes = [], []
    if args.learner in ("auto", "fasttext"):
        found.append(fasttext_candidate(args, shape))
    if args.learner in ("auto", "linear"):
        linear_candidates, reason = linear_learner.candidates(shape)
        if not linear_candidates and args.learner == "linear":
            linear_candidates, reason = linear_learner.candidates(shape, forced=True)
        log(reason)
        notes.append(reason)
        found += linear_candidates
    return found, notes


def _baseline(train: list[Example], validation: Validation) -> dict:
    """TF-IDF 1-2 grams + one-vs-rest logistic regression (training/evaluate.py) on the same split."""
    log("baseline: TF-IDF 1-2 grams + one-vs-rest logistic regression on the same split")
    started = time.monotonic()
    _, predictions = baseline_predictions(train, validation.examples)
    scores = validation.scored(predictions)
    log(f"  P@1 {scores['p_at_1']:.4f}, R@5 {scores['r_at_5']:.4f}, ECE {scores['ece_top5']:.3f}")
    return {"name": "TF-IDF 1-2 grams + LR (baseline, not a fastText model)", "seconds": time.monotonic() - started,
            **scores}


def _better(current: dict | None, result: dict | None) -> dict | None:
    if result is None or (current is not None and criterion(current["scores"]) >= criterion(result["scores"])):
        return current
    return result


def fit(candidate: Candidate, examples: list[Example], work: Path, args, linear_learner: LinearLearner):
    if candidate.learner == fasttext_supervised.NAME:
        return fasttext_supervised.fit(candidate, examples, work, args.threads, log)
    return linear_learner.fit(candidate, examples)


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
    shape = data_shape(train_examples, len(label_counts))
    linear_learner = LinearLearner(args.threads, log)
    candidates, learner_notes = candidates_for(args, shape, linear_learner)
    budget = int(args.size_budget * size_budget.MIB)
    paths = output_paths(args.output)
    paths["model"].parent.mkdir(parents=True, exist_ok=True)

    build_ctx = tempfile.TemporaryDirectory(prefix="fasttext-train-") if args.build_dir is None else None
    build = Path(build_ctx.name) if build_ctx else args.build_dir
    build.mkdir(parents=True, exist_ok=True)
    try:
        validation = Validation(valid_examples, build, binary)
        train_file = build / "train.txt"
        ft.write_training_file(train_examples, train_file)
        log(f"step 1/4: {len(candidates)} candidates, each fitted on the training split and scored on validation "
            f"(criterion: mean of P@1 and R@5, probabilities calibrated)")
        results, best, best_any = [], None, None
        for i, candidate in enumerate(candidates, start=1):
            log(f"candidate {i}/{len(candidates)}: {candidate.name}")
            candidate_started = time.monotonic()
            model = fit(candidate, train_examples, build / f"candidate-{i}", args, linear_learner)
            temperature, scores, _ = validation.calibrated(model)
            seconds = time.monotonic() - candidate_started
            fits = (args.no_quantize or candidate.params.get("quantize") is not None
                    or size_budget.fits_without_dropping_rows(model, budget))
            result = {"candidate": candidate, "model": model, "temperature": temperature, "scores": scores,
                      "seconds": seconds, "fits": fits}
            results.append(result)
            best, best_any = _better(best, result if fits else None), _better(best_any, result)
            for r in results:
                if r is not best and r is not best_any:
                    r["model"] = None  # only the best candidates' matrices are kept
            log(f"  P@1 {scores['p_at_1']:.4f}, R@5 {scores['r_at_5']:.4f}, ECE {scores['ece_top5']:.3f} "
                f"(temperature {temperature:.3f}; {scores['ece_top5_uncalibrated']:.3f} without), "
                f"{model.file_bytes() / size_budget.MIB:.1f} MiB dense, {seconds:.1f} s"
                + ("" if fits else "; cannot keep every row within the size budget: not eligible"))
            model = None
        winner = best or best_any
        baseline = _baseline(train_examples, validation) if args.baseline else None
        why = (f"{winner['candidate'].name} wins: criterion {criterion(winner['scores']):.4f}"
               + "".join(f"; {r['candidate'].name} {criterion(r['scores']):.4f}" for r in results if r is not winner))
        log(why)
        if best_any is not winner:
            best_any["model"] = None

        log("step 2/4: the winner within the size budget, scored on validation")
        calibrated = calibration.with_temperature(winner["model"], winner["temperature"])
        dense_bytes = calibrated.file_bytes()
        preset_options = None if args.no_quantize else winner["candidate"].params.get("quantize")
        budget_for_run = max(budget, dense_bytes) if args.no_quantize else budget
        shipped = size_budget.within_budget(
            calibrated, build / "budget", budget_for_run, lambda path: validation.scored(validation.answers(path)),
            criterion, train_file, args.threads, log, preset_options=preset_options,
            temperature=validation.file_temperature)
        dense_scores = winner["scores"]
        final_scores = shipped.scores or dense_scores
        predictions = validation.answers(shipped.path)
        check = cross_check(binary, shipped.path, validation.labelled_file, validation.gold, predictions,
                            set(label_counts))

        if args.no_refit:
            log("step 3/4: --no-refit: shipping the model fitted on the training split")
            final_path = shipped.path
        else:
            log(f"step 3/4: refitting {winner['candidate'].name} on all {len(train_examples) + len(valid_examples):,} "
                f"rows (training and validation)")
            all_examples = train_examples + valid_examples
            winner["model"] = calibrated = None
            refit = fit(winner["candidate"], all_examples, build / "refit", args, linear_learner)
            refit = calibration.with_temperature(refit, winner["temperature"])
            all_file = build / "all.txt"
            ft.write_training_file(all_examples, all_file)
            final_path = _ship(refit, build / "final", shipped, budget_for_run, all_file, args.threads)
            refit = None

        log("step 4/4: writing the model, metrics, report and figure")
        write_atomically(final_path, paths["model"])
        training_seconds = time.monotonic() - started
        metrics = {
            "learner": winner["candidate"].learner,
            "winner": winner["candidate"].name,
            "why": why,
            "criterion": "mean of validation P@1 and R@5, probabilities calibrated",
            "candidates": [{"name": r["candidate"].name, "learner": r["candidate"].learner,
                            "params": _jsonable(r["candidate"].params), "temperature": r["temperature"],
                            "seconds": r["seconds"], "eligible": r["fits"], **r["scores"]} for r in results],
            "learner_notes": learner_notes,
            "baseline": baseline,
            "preset": winner["candidate"].params.get("preset"),
            "temperature": winner["temperature"],
            "temperature_after_quantization": shipped.factor,
            "refit_on_all_rows": not args.no_refit,
            "data": source,
            "data_notes": notes,
            "model": str(paths["model"]),
            "model_bytes": paths["model"].stat().st_size,
            "size_budget_bytes": budget,
            "unquantized_bytes": dense_bytes,
            "quantized": shipped.quantize is not None,
            "quantize_params": shipped.quantize,
            "quantize_args": size_budget.fasttext_args(shipped.quantize) if shipped.quantize else [],
            "params": _jsonable(winner["candidate"].params.get("train", winner["candidate"].params)),
            "pretrain_params": _jsonable(winner["candidate"].params.get("pretrain")),
            "quantize_tried": shipped.tried,
            "labels": len(label_counts),
            "train_examples": len(train_examples),
            "valid_examples": len(valid_examples),
            "p_at_1": final_scores["p_at_1"],
            "p_at_5": final_scores["p_at_5"],
            "r_at_5": final_scores["r_at_5"],
            "ece_top5": final_scores["ece_top5"],
            "p_at_1_unquantized": dense_scores["p_at_1"],
            "r_at_5_unquantized": dense_scores["r_at_5"],
            "quantization_cost_p_at_1": dense_scores["p_at_1"] - final_scores["p_at_1"],
            "validation": final_scores,
            "validation_unquantized": dense_scores,
            "calibration": mt.calibration(validation.gold, predictions),
            "fasttext_test": check,
            "training_seconds": training_seconds,
            "threads": args.threads,
        }
        paths["metrics"].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        frequent = [label for label, _ in label_counts.most_common(TOP_LABELS)]
        curve = mt.threshold_curve(validation.gold, predictions, THRESHOLDS, k=PREDICT_K)
        write_report(paths["report"], metrics,
                     mt.per_label(validation.gold, predictions, frequent, k=5, threshold=0.0),
                     mt.per_label(validation.gold, predictions, frequent, k=5, threshold=0.5),
                     curve, paths["figure"].name)
        write_pr_figure(paths["figure"], curve,
                        f"{winner['candidate'].name}: P@1 {final_scores['p_at_1']:.3f}, "
                        f"R@5 {final_scores['r_at_5']:.3f}, {metrics['model_bytes'] / 2**20:.2f} MiB")
        log(f"done in {training_seconds:.1f} s: {paths['model']} ({metrics['model_bytes']:,} bytes), "
            f"{winner['candidate'].name}; validation P@1 {final_scores['p_at_1']:.4f}, R@5 {final_scores['r_at_5']:.4f}, "
            f"ECE {final_scores['ece_top5']:.3f}")
        for key in ("metrics", "report", "figure"):
            log(f"  wrote {paths[key]}")
        return metrics
    finally:
        if build_ctx:
            build_ctx.cleanup()


def _ship(model: FastTextModel, work: Path, shipped: size_budget.Shipped, budget: int, train_file: Path,
          threads: int) -> Path:
    """The refit model as a file, quantized as chosen on validation; unless they are a preset's own
    options, with as many rows as the budget allows."""
    work.mkdir(parents=True, exist_ok=True)
    dense = work / "dense.bin"
    write_model(model, dense)
    options = shipped.quantize
    if options is None:
        return dense
    if "cutoff" in options and not shipped.preset:
        options = {**options, "cutoff": size_budget.rows_within(model, budget, options["dsub"], options["qout"])}
    quantized = size_budget.quantize_within(dense, work / "final.bin", options, budget, train_file, threads, log)
    if shipped.factor != 1.0:
        calibration.rescale_output(quantized, len(model.labels), model.dim, shipped.factor)
    return quantized


def _jsonable(params: dict | None) -> dict | None:
    return json.loads(json.dumps(params, default=str))


if __name__ == "__main__":
    main()
