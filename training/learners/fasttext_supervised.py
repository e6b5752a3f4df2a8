"""fastText's own learner: `fasttext supervised` (after optional skipgram word vectors), as a learner.

The candidate's params are a preset's: `train` (supervised options), `pretrain` (word-vector
options and an optional `corpus` of further texts, or None) and `quantize` (the preset's own
quantize options, or None to let the size budget decide).
"""

from pathlib import Path

from training import fasttext_cli as ft
from training.dataset import Example, read_examples
from training.learners import Candidate
from training.model_file import FastTextModel, read_model

NAME = "fasttext"


def candidate(preset_name: str, preset: dict) -> Candidate:
    return Candidate(NAME, f"fastText preset {preset_name}", {"preset": preset_name, **preset})


def fit(candidate: Candidate, examples: list[Example], work: Path, threads: int, log) -> FastTextModel:
    """Train on the examples in `work`; the dense model, read back as arrays."""
    binary = ft.fasttext_binary()
    work.mkdir(parents=True, exist_ok=True)
    train_file = work / "train.txt"
    ft.write_training_file(examples, train_file)
    params = dict(candidate.params["train"])
    pparams = candidate.params.get("pretrain")
    if pparams is not None:
        vectors = _pretrain(binary, examples, work, {**pparams, "dim": params.get("dim", 100)}, threads, log)
        if vectors is not None:
            params["pretrainedVectors"] = str(vectors.resolve())
    else:
        log("  no word-vector pretraining")
    log(f"  fasttext supervised {' '.join(ft.params_to_args(params))}")
    seconds = ft.train(binary, train_file, work / "model", params, threads=threads)
    log(f"  trained in {seconds:.1f} s")
    return read_model(work / "model.bin")


def _pretrain(binary: Path, examples: list[Example], work: Path, pparams: dict, threads: int, log) -> Path | None:
    """Word vectors on the training texts and the preset's `corpus`; None when fastText fails on them."""
    corpus = pparams.get("corpus")
    corpus_examples = list(read_examples(ft.ROOT / corpus)) if corpus else []
    log(f"  fasttext {pparams.get('model', 'skipgram')} word vectors on the {len(examples):,} training texts "
        f"and {len(corpus_examples):,} texts of {corpus or 'no further corpus'}")
    text_file = work / "pretrain.text.txt"
    ft.write_text_file(examples + corpus_examples, text_file)
    try:
        seconds = ft.pretrain(binary, text_file, work / "vectors", {k: v for k, v in pparams.items() if k != "corpus"},
                              threads=threads)
    except RuntimeError as e:
        # fastText 0.9.3 can abort on NaN here for a very small corpus; the supervised model
        # trains fine without the vectors.
        log(f"  word-vector pretraining failed, continuing without pretrained vectors: {e}")
        return None
    (work / "vectors.bin").unlink(missing_ok=True)
    log(f"  word vectors in {seconds:.1f} s")
    return work / "vectors.vec"
