"""Train a hashtag model the bundled fastText binary serves: read, choose on validation, calibrate,
fit the size budget, write.

    python -m training.train --train posts.csv [--valid valid.csv] --output my.bin
    python -m training.train                     # the default model, from the bundled Debian data

Input: CSV with a header (columns `text` and `hashtags` or `tags`, optional `id` and `group`),
JSON lines ({"text": "...", "hashtags": ["#a", "b"]}), fastText's `__label__a text` format, or
the 4-column TSV of data/; gzipped or not; the format comes from the name and the content, or
--format. Tags are separated by whitespace, commas, semicolons or `|`, `#` optional, or written
as `<a><b>` (Stack Exchange's exports) or `["a", "b"]`. CSV column names match in any case. Tags that
cannot be hashtags and rows that cannot be read are dropped (--strict: the file is refused, every bad
row named as file:line: what is wrong, before anything is trained). Rows with no words or no tags
and repeated texts are dropped, each rule with one line saying so; every tag is kept unless
--min-tag-count says otherwise. Without --valid, a seeded split (by the `group` column when there is
one) keeps about 20% (at most 10,000 rows) for validation; the bundled Debian data is used only when
--train is not given.

Every learner's candidates (training/learners/) are fitted on the training part, brought within the
size budget and scored as the files they will be: the best on half of the validation texts wins, its
calibration is fitted on the other half. Where it pays (validation taken from --train, under 10,000
training rows) the winner is fitted again on every row, its calibration carried over with the ratio of the two
models' score scales. Writes OUTPUT and, next to it, OUTPUT-stem.metrics.json, .report.md and .pr.png.
"""

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import calibration, prepare, size_budget
from training import fasttext_cli as ft
from training import metrics as mt
from training.baseline import baseline_predictions
from training.dataset import FORMATS
from training.errors import TrainingError, exit_with
from training.learners import LEARNERS, Candidate, DataShape, Options, learners
from training.model_file import FastTextModel, write_model
from training.progress import logger
from training.report import write_pr_figure, write_report
from training.validation import PREDICT_K, Validation, criterion

TOP_LABELS = 20
THRESHOLDS = [round(i * 0.05, 2) for i in range(0, 20)] + [0.99]
# Past this many training rows a refit costs a second fit (minutes of fastText) for rows that add
# less: the rare tags and words a fifth more rows bring matter most to small exports.
REFIT_ROWS = 10_000
BINARY_CHECK_TEXTS = 200
SCALE_SAMPLE = 2_000

log = logger("train")


# --- the command line ----------------------------------------------------------------------------------------

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
    data.add_argument("--min-tag-count", type=int, default=prepare.DEFAULT_MIN_TAG_COUNT, metavar="N",
                      help="drop tags seen fewer than N times in training (default: 1, every tag is kept)")
    data.add_argument("--split-seed", type=int, default=prepare.SPLIT_SEED,
                      help="seed of the train/validation split when there is no --valid")
    data.add_argument("--strict", action="store_true",
                      help="refuse a file with a tag that cannot be a hashtag or a row that cannot be read, "
                           "naming every one, instead of dropping them")
    parser.add_argument("--learner", choices=("auto", *LEARNERS), default="auto",
                        help="auto (default): every learner's candidates, the best on validation wins; "
                             "or only the one named")
    parser.add_argument("--size-budget", type=float, default=size_budget.DEFAULT_BUDGET / size_budget.MIB,
                        metavar="MIB", help="the largest model file written, in MiB (default: 10)")
    parser.add_argument("--baseline", action="store_true",
                        help="also fit the TF-IDF + logistic regression baseline on the same split and report it "
                             "beside the candidates")
    parser.add_argument("--no-refit", action="store_true",
                        help="ship the winner as fitted on the training part, not refitted on all rows")
    parser.add_argument("--preset", help="the fastText learner's preset: auto (sized from the data; the default "
                                         "with --train) or default (the Debian model's; the default without --train)")
    parser.add_argument("--output", type=Path, default=Path("model.bin"))
    parser.add_argument("--pretrained-vectors", type=Path,
                        help="a .vec file for -pretrainedVectors; its dimension overrides the preset's dim")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a fastText supervised option of the preset (repeatable)")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a word-vector pretraining option of the preset (repeatable)")
    parser.add_argument("--no-pretrain", action="store_true", help="skip the preset's word-vector pretraining step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the learners, the halves and the quantizer")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of fastText and liblinear (default: the cores there are)")
    parser.add_argument("--build-dir", type=Path, help="keep intermediate files here (default: a temp dir)")
    return parser


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
            raise TrainingError(f"override {item!r} must look like NAME=VALUE")
        out[name.lstrip("-")] = parse_value(value)
    return out


def learner_options(args: argparse.Namespace) -> Options:
    if args.size_budget <= 0 or args.threads < 1 or args.min_tag_count < 1:
        raise TrainingError("--size-budget, --threads and --min-tag-count must be positive")
    return Options(threads=args.threads, size_budget=int(args.size_budget * size_budget.MIB), seed=args.seed,
                   forced=args.learner != "auto", preset=args.preset, own_data=args.train is not None,
                   overrides=parse_overrides(args.set), pretrain_overrides=parse_overrides(args.pretrain_set),
                   pretrain=not args.no_pretrain,
                   pretrained_vectors=str(args.pretrained_vectors) if args.pretrained_vectors else None, log=log)


def data_source(args: argparse.Namespace) -> dict:
    """Where the examples come from and how they are split: recorded in the metrics, reused by evaluate."""
    own = args.train is not None
    return {
        "train": str(args.train or ft.DEFAULT_TRAIN),
        "valid": str(args.valid) if args.valid else None if own else str(ft.DEFAULT_VALID),
        "format": args.format,
        "columns": {"text": args.text_column, "tags": args.tags_column, "group": args.group_column},
        "min_tag_count": args.min_tag_count,
        "split_seed": args.split_seed,
        "strict": args.strict,
    }


def output_paths(output: Path) -> dict:
    stem = output.with_suffix("") if output.suffix else output
    return {
        "model": output,
        "metrics": stem.with_name(stem.name + ".metrics.json"),
        "report": stem.with_name(stem.name + ".report.md"),
        "figure": stem.with_name(stem.name + ".pr.png"),
    }


# --- the steps -------------------------------------------------------------------------------------------------

class Steps:
    """Wall seconds of each named step, for the log, the metrics and the report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.monotonic()

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def total(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Result:
    """A candidate as it would ship: fitted, calibrated, within the budget, scored."""

    learner: object
    candidate: Candidate
    shipped: size_budget.Shipped  # calibrated by (a, b), within the budget, before the temperature
    calibration: dict  # a, b, temperature, and the fitted model's score scale on training texts
    scores: dict  # on the selection half, by the calibrated file; its ECE on texts the calibration never saw
    seconds: float
    bytes: int

    def written(self) -> FastTextModel:
        return self.shipped.model.with_output_scale(self.calibration["temperature"])

    def row(self) -> dict:
        setting = self.shipped.setting
        return {"name": self.candidate.name, "learner": self.candidate.learner, "params": _jsonable(self.candidate.params),
                "calibration": self.calibration, "seconds": self.seconds, "bytes": self.bytes,
                "setting": setting.describe() if setting else "dense", **self.scores}


def data_shape(part: prepare.Part) -> DataShape:
    """Sizes of the training part the learners size themselves from, counted with numpy: each line's
    distinct words and neighbouring pairs as integer ids, not a dictionary entry per pair."""
    index: dict[str, int] = {}
    words, pairs, tokens = [], [], 0
    for line in part.lines:
        ids = [index.setdefault(token, len(index)) for token in line.split()]
        tokens += len(ids)
        words.append(np.unique(np.array(ids, dtype=np.int64)))
        if len(ids) > 1:
            a = np.array(ids, dtype=np.int64)
            pairs.append(np.unique(a[:-1] * (1 << 32) + a[1:]))
    word_lines = np.unique(np.concatenate(words), return_counts=True)[1] if words else np.zeros(0)
    pair_lines = np.unique(np.concatenate(pairs), return_counts=True)[1] if pairs else np.zeros(0)
    return DataShape(examples=len(part), labels=len(part.label_counts()), tokens=tokens, words=len(word_lines),
                     bigrams=len(pair_lines), recurring=int((word_lines >= 2).sum() + (pair_lines >= 2).sum()))


def propose(chosen: list, shape: DataShape) -> tuple[list[tuple[object, Candidate]], list[str]]:
    """Every candidate of the learners, and what each learner decided."""
    found, notes = [], []
    for learner in chosen:
        candidates, note = learner.candidates(shape)
        log(note)
        notes.append(note)
        found += [(learner, candidate) for candidate in candidates]
    if not found:
        raise TrainingError("no candidate fits: " + "; ".join(notes) + " (raise --size-budget, or --learner fasttext)")
    return found, notes


def fit_and_score(learner, candidate: Candidate, part: prepare.Part, validation: Validation, work: Path,
                  options: Options, steps: Steps) -> Result:
    """Fit the candidate; calibrate it on the calibration half; bring it within the budget (settings
    ranked on the selection half); fit its temperature on the file's scores; score it on the selection half."""
    started = time.monotonic()
    with steps.timed("fit"):
        model = learner.fit(candidate, part, work)
    with steps.timed("calibrate"):
        scale = calibration.median_best_score(model, scale_sample(part, options.seed))
        raw = validation.scores(model)
        uncalibrated = validation.scored(model.labels, raw, validation.select)[0]["ece_top5"]
        a, b = validation.fit(calibration.fit_affine, model.labels, raw)
        model = calibration.with_affine(model, a, b)
    with steps.timed("quantize"):
        def score(m):
            return validation.scored(m.labels, validation.scores(m), validation.select)[0]

        shipped = size_budget.shippable(model, options.size_budget, score, criterion, log)
    with steps.timed("calibrate"):
        scores = validation.scores(shipped.model)
        t = validation.fit(calibration.fit_temperature, model.labels, scores)
        selected, _ = validation.scored(model.labels, scores * np.float32(t), validation.select)
        selected["ece_top5_uncalibrated"] = uncalibrated
    facts = {"a": a, "b": b, "temperature": t, "score_scale": scale}
    result = Result(learner, candidate, shipped, facts, selected, time.monotonic() - started,
                    shipped.model.file_bytes())
    log(f"  P@1 {selected['p_at_1']:.4f}, R@5 {selected['r_at_5']:.4f}, ECE {selected['ece_top5']:.3f} on the "
        f"selection half (calibrated {a:.3f} x score + {b:.3f}, then x {t:.3f} as written); "
        f"{result.bytes / size_budget.MIB:.2f} MiB; {result.seconds:.1f} s")
    return result


def scale_sample(part: prepare.Part, seed: int) -> list[str]:
    """A seeded sample of training lines on which a model and its refit compare their score scales."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(part))[:SCALE_SAMPLE])
    return [part.lines[i] for i in rows]


def choose(results: list[Result]) -> tuple[Result, str]:
    winner = max(results, key=lambda r: criterion(r.scores))
    why = (f"{winner.candidate.name} wins: criterion {criterion(winner.scores):.4f}"
           + "".join(f"; {r.candidate.name} {criterion(r.scores):.4f}" for r in results if r is not winner))
    return winner, why


def refit_decision(args: argparse.Namespace, split: prepare.Split) -> tuple[bool, str]:
    if args.no_refit:
        return False, "not refitted: --no-refit"
    if split.valid_from_file:
        return False, "not refitted: the validation rows are a file of their own, kept for measuring the model"
    if len(split.train) >= REFIT_ROWS:
        return False, (f"not refitted: {len(split.train):,} training rows, so the {len(split.valid):,} validation "
                       f"rows would add little for a second fit")
    return True, (f"refitted on all {len(split.train) + len(split.valid):,} rows: the {len(split.valid):,} "
                  f"validation rows add tags and words a model of {len(split.train):,} rows lacks")


def refit(winner: Result, split: prepare.Split, work: Path, options: Options, steps: Steps) -> tuple[FastTextModel, dict]:
    """The winner fitted on every row, calibrated and within the budget as the winner was; its a
    scaled by the ratio of the two models' score scales on training texts both were fitted on, found
    without labels."""
    everything = split.train + split.valid
    with steps.timed("refit"):
        model = winner.learner.fit(winner.candidate, everything, work)
        facts = winner.calibration
        ratio = facts["score_scale"] / calibration.median_best_score(model, scale_sample(split.train, options.seed))
        model = calibration.with_affine(model, facts["a"] * ratio, facts["b"])
        model = size_budget.shipped_like(model, winner.shipped.setting, options.size_budget)
    log(f"  refitted in {steps.seconds['refit']:.1f} s; a {facts['a']:.3f} x {ratio:.3f} (the ratio of the two "
        f"models' median best score on {SCALE_SAMPLE:,} training texts at most), b and the temperature kept")
    return model.with_output_scale(facts["temperature"]), {"rows": len(everything), "scale_ratio": ratio,
                                                           "a": facts["a"] * ratio, "seconds": steps.seconds["refit"]}


def check_against_binary(path: Path, model: FastTextModel, lines: list[str], work: Path) -> dict:
    """`fasttext predict-prob` on the written file against the Python scores the metrics come from."""
    work.mkdir(parents=True, exist_ok=True)
    text_file = work / "check.txt"
    ft.write_lines(lines, text_file)
    answers = ft.predict_prob(ft.fasttext_binary(), path, text_file, -1)
    expected = model.probabilities(lines, exact=True)
    index = {label: i for i, label in enumerate(model.labels)}
    worst = max((abs(p - float(expected[t, index[label]])) for t, answer in enumerate(answers) for label, p in answer),
                default=0.0)
    log(f"  fasttext predict-prob on {len(lines)} validation texts: largest difference from the Python scores "
        f"{worst:.2g}")
    if worst > 1e-4:
        raise TrainingError(f"the written model answers up to {worst:.3g} away from the scores it was validated "
                            f"with: a bug in training/model_file.py; please report it")
    return {"texts": len(lines), "largest_difference": worst}


def baseline(split: prepare.Split, validation: Validation, threads: int) -> dict:
    log("baseline: TF-IDF 1-2 grams + one-vs-rest logistic regression on the same split")
    started = time.monotonic()
    name, predictions = baseline_predictions(split.train, split.valid, jobs=threads)
    scores = validation.scored_answers([predictions[i] for i in validation.select], validation.select)
    log(f"  {name}: P@1 {scores['p_at_1']:.4f}, R@5 {scores['r_at_5']:.4f}, ECE {scores['ece_top5']:.3f}")
    return {"name": f"{name} (baseline, not a fastText model)", "seconds": time.monotonic() - started, **scores}


# --- the outline -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        return train(args)
    except TrainingError as e:
        raise exit_with(e) from None


def train(args: argparse.Namespace) -> dict:
    steps = Steps()
    options = learner_options(args)
    with steps.timed("read and clean"):
        split = prepare.load(data_source(args), log)
    for line in split.notes:
        log(line)
    prepare.require_examples(split)
    for line in prepare.summary(split):
        log(line)
    shape = data_shape(split.train)
    candidates, notes = propose(learners(list(LEARNERS) if args.learner == "auto" else [args.learner], options),
                                shape)
    paths = output_paths(args.output)
    with build_directory(args.build_dir) as build:
        validation = Validation(split.valid, args.seed)
        results = fit_candidates(candidates, split, validation, build, options, steps)
        winner, why = choose(results)
        log(why)
        reference = baseline(split, validation, args.threads) if args.baseline else None
        validated = written = winner.written()
        refits, refit_why = refit_decision(args, split)
        log(refit_why)
        refit_facts = None
        if refits:
            written, refit_facts = refit(winner, split, build / "refit", options, steps)
        with steps.timed("write and check"):
            sample = [split.valid.lines[i] for i in validation.select[:BINARY_CHECK_TEXTS]]
            check = write_checked(written, paths["model"], sample, build)
        with steps.timed("report"):
            return write_outputs(paths, args, split, shape, validation, results, winner, why, notes, reference,
                                 validated, refit_why, refit_facts, check, steps)


def fit_candidates(candidates: list, split: prepare.Split, validation: Validation, build: Path, options: Options,
                   steps: Steps) -> list[Result]:
    """Every candidate fitted and scored as its file, keeping only the best one's matrices; one that
    fails is left out with a line saying why."""
    results, failures = [], []
    for i, (learner, candidate) in enumerate(candidates, start=1):
        log(f"candidate {i}/{len(candidates)}: {candidate.name}")
        try:
            results.append(fit_and_score(learner, candidate, split.train, validation, build / learner.name, options,
                                         steps))
        except TrainingError as e:
            log(f"  left out: {e}")
            failures.append(f"{candidate.name}: {e}")
            continue
        best = max(results, key=lambda r: criterion(r.scores))
        for r in results:
            if r is not best:
                r.shipped.model = None
    if not results:
        raise TrainingError("no candidate could be written: " + "; ".join(failures))
    return results


@contextlib.contextmanager
def build_directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="fasttext-train-") as tmp:
        yield Path(tmp)


def write_checked(model: FastTextModel, destination: Path, lines: list[str], work: Path) -> dict:
    """Write the model beside `destination`, check the binary answers it as its scores say, then rename
    it over `destination`: a server never sees half a model, nor one that failed its check."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    write_model(model, partial)
    try:
        check = check_against_binary(partial, model, lines, work)
    except TrainingError:
        partial.unlink()
        raise
    os.replace(partial, destination)
    return check


def write_outputs(paths: dict, args, split: prepare.Split, shape: DataShape, validation: Validation,
                  results: list[Result], winner: Result, why: str, notes: list[str], reference: dict | None,
                  validated: FastTextModel, refit_why: str, refit_facts: dict | None, check: dict,
                  steps: Steps) -> dict:
    """model.metrics.json, the report and the figure, every figure measured on the whole validation part
    with the model written, or, after a refit, with the model it was refitted from."""
    scores = validated.scores(split.valid.lines)
    final, predictions = validation.scored(validated.labels, scores)
    setting = winner.shipped.setting
    metrics = {
        "model": str(paths["model"]),
        "model_bytes": paths["model"].stat().st_size,
        "metrics_of": ("the written model" if refit_facts is None else
                       "the model fitted on the training part, as written before the refit (same setting and "
                       "learner); the written model was refitted on these validation rows too, so they cannot "
                       "measure it"),
        "learner": winner.candidate.learner,
        "winner": winner.candidate.name,
        "why": why,
        "criterion": "mean of P@1 and R@5 on the selection half of validation, each candidate as its file",
        "candidates": [r.row() for r in results],
        "learner_notes": notes,
        "baseline": reference,
        "calibration_fit": winner.calibration,
        "setting": setting.describe() if setting else "dense",
        "quantized": setting is not None,
        "quantize_tried": winner.shipped.tried,
        "refit": {"done": refit_facts is not None, "why": refit_why, **(refit_facts or {})},
        "params": _jsonable(winner.candidate.params),
        "size_budget_bytes": int(args.size_budget * size_budget.MIB),
        "labels": len(validated.labels),
        "export_tags": split.export_tags,
        "train_examples": len(split.train),
        "valid_examples": len(split.valid),
        "data_shape": vars(shape),
        "data": data_source(args),
        "data_notes": split.notes,
        "p_at_1": final["p_at_1"],
        "p_at_5": final["p_at_5"],
        "r_at_5": final["r_at_5"],
        "ece_top5": final["ece_top5"],
        "validation": final,
        "calibration": mt.calibration(validation.gold, predictions),
        "binary_check": check,
        "training_seconds": steps.total(),
        "steps_seconds": steps.seconds,
        "threads": args.threads,
    }
    paths["metrics"].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    frequent = [label for label, _ in split.train.label_counts().most_common(TOP_LABELS)]
    curve = mt.threshold_curve(validation.gold, predictions, THRESHOLDS, k=PREDICT_K)
    write_report(paths["report"], metrics, mt.per_label(validation.gold, predictions, frequent, k=5, threshold=0.0),
                 mt.per_label(validation.gold, predictions, frequent, k=5, threshold=0.5), curve, paths["figure"].name)
    write_pr_figure(paths["figure"], curve, f"{winner.candidate.name}: P@1 {final['p_at_1']:.3f}, "
                                            f"R@5 {final['r_at_5']:.3f}, {metrics['model_bytes'] / 2**20:.2f} MiB")
    log(f"done in {steps.total():.1f} s: {paths['model']} ({metrics['model_bytes']:,} bytes), {winner.candidate.name}; "
        f"validation P@1 {final['p_at_1']:.4f}, R@5 {final['r_at_5']:.4f}, ECE {final['ece_top5']:.3f} "
        f"({metrics['metrics_of']})")
    log("  steps: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.seconds.items()))
    return metrics


def _jsonable(params: dict | None) -> dict | None:
    return json.loads(json.dumps(params, default=str))


if __name__ == "__main__":
    main()
