"""fastText's own learner: `fasttext supervised` (after optional skip-gram word vectors), as a learner.

Its one candidate is a preset (training/presets.py: named, or `auto`, sized from the data) with the
command line's overrides, checked before anything is trained: the served file must be a model the
Python scores of training/model_file.py answer exactly, so a loss other than ova or ns (softmax and
hs are not independent probabilities), subwords (maxn > 0) or another label prefix are refused.
"""

from pathlib import Path

from training import fasttext_cli as ft
from training.errors import TrainingError
from training.learners.base import Candidate, DataShape, Options
from training.model_file import FastTextModel, read_model
from training.prepare import Part
from training.presets import auto_preset, get_preset

NAME = "fasttext"
# The supervised options --set may override, with the type each takes.
OPTION_TYPES = {"lr": float, "lrUpdateRate": int, "dim": int, "ws": int, "epoch": int, "minCount": int,
                "minCountLabel": int, "neg": int, "wordNgrams": int, "loss": str, "bucket": int, "minn": int,
                "maxn": int, "t": float, "seed": int}
SERVED_LOSSES = ("ova", "ns")  # one sigmoid per label: what predict-prob prints and model_file scores
PRETRAIN_MODELS = ("skipgram", "cbow")
LR_RETRIES = 3  # halvings of the learning rate after fastText diverged


def check_params(params: dict) -> dict:
    """The supervised options as fastText takes them, or TrainingError saying what the served model cannot be."""
    for name, value in params.items():
        if name == "pretrainedVectors":
            continue
        kind = OPTION_TYPES.get(name)
        if kind is None:
            raise TrainingError(f"--set {name}: not a fastText supervised option this project serves; "
                                f"one of: {', '.join(OPTION_TYPES)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            params[name] = value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TrainingError(f"--set {name}={value!r}: must be {'a number' if kind is float else kind.__name__}")
        if kind is not str and value < 0:
            raise TrainingError(f"--set {name}={value}: must not be negative")
    if params.get("loss", "softmax") not in SERVED_LOSSES:
        raise TrainingError(f"loss {params.get('loss', 'softmax')!r} cannot be served as independent hashtag "
                            f"probabilities: use {' or '.join(SERVED_LOSSES)} (--set loss=ova)")
    if params.get("maxn", 0) > 0:
        raise TrainingError(f"maxn {params['maxn']}: subword n-grams are not served (the model's scores are "
                            f"computed on words and word n-grams); use --set maxn=0")
    if not 1 <= params.get("wordNgrams", 1) <= 5:
        raise TrainingError(f"wordNgrams {params['wordNgrams']}: must be 1 to 5")
    if params.get("bucket", 2_000_000) < 1 or params.get("dim", 100) < 1 or params.get("epoch", 5) < 1:
        raise TrainingError("bucket, dim and epoch must be at least 1")
    return params


def read_vec_dim(path: Path) -> int:
    """The dimension from a .vec file's `<words> <dim>` header line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline().split()
    except OSError as e:
        raise TrainingError(f"--pretrained-vectors {path}: {e.strerror}") from None
    if len(header) != 2 or not all(h.isdigit() for h in header):
        raise TrainingError(f"{path} is not a .vec file: its first line must be '<words> <dim>'")
    return int(header[1])


class FastTextLearner:
    name = NAME

    def __init__(self, options: Options):
        self.options = options
        self.log = options.log
        self._files: dict[int, Path] = {}

    def candidates(self, shape: DataShape) -> tuple[list[Candidate], str]:
        """The preset asked for (or sized from the data) with the command line's overrides, checked."""
        name = self.options.preset or ("auto" if self.options.own_data else "default")
        if name == "auto":
            preset, reasons = auto_preset(shape.examples, shape.labels, shape.tokens, shape.words, shape.bigrams)
            note = "fastText preset 'auto' for this data: " + "; ".join(reasons)
        else:
            preset, note = get_preset(name), f"fastText preset {name!r}"
        params = check_params({**preset["train"], **self.options.overrides})
        pretrain = preset.get("pretrain")
        if self.options.pretrain_overrides:
            pretrain = {**(pretrain or {}), **self.options.pretrain_overrides}
        if not self.options.pretrain or self.options.pretrained_vectors:
            pretrain = None
        if pretrain is not None and pretrain.get("model", "skipgram") not in PRETRAIN_MODELS:
            raise TrainingError(f"pretrain model must be {' or '.join(PRETRAIN_MODELS)}, not {pretrain['model']!r}")
        if self.options.pretrained_vectors:
            dim = read_vec_dim(Path(self.options.pretrained_vectors))
            if params.get("dim") != dim:
                note += f"; --pretrained-vectors has dimension {dim}: -dim {dim} instead of {params.get('dim')}"
            params.update(dim=dim, pretrainedVectors=str(Path(self.options.pretrained_vectors).resolve()))
        params.setdefault("seed", self.options.seed)
        return [Candidate(NAME, f"fastText preset {name}", {"preset": name, "train": params, "pretrain": pretrain})], note

    def fit(self, candidate: Candidate, part: Part, work: Path) -> FastTextModel:
        """`fasttext supervised` on the part's lines; the model read back as arrays."""
        binary = ft.fasttext_binary()
        work.mkdir(parents=True, exist_ok=True)
        params = dict(candidate.params["train"])
        pretrain = candidate.params.get("pretrain")
        if pretrain is not None:
            vectors = self._pretrain(binary, part, work, {**pretrain, "dim": params.get("dim", 100)})
            if vectors is not None:
                params["pretrainedVectors"] = str(vectors.resolve())
        seconds = self._supervised(binary, self._training_file(part, work), work, params)
        candidate.params["train"]["lr"] = params["lr"]  # the rate that trained, for a refit and the metrics
        self.log(f"  trained in {seconds:.1f} s")
        model = read_model(work / "model.bin")
        (work / "model.bin").unlink()
        return model

    def _supervised(self, binary: Path, train_file: Path, work: Path, params: dict) -> float:
        """`fasttext supervised`; when its loss diverges to NaN (it aborts), again at half the learning rate."""
        halvings = 0
        while True:
            self.log(f"  fasttext supervised {' '.join(ft.params_to_args(params))} -thread {self.options.threads}")
            try:
                return ft.train(binary, train_file, work / "model", params, threads=self.options.threads)
            except ft.FastTextFailed as e:
                halvings += 1
                if not e.aborted or halvings > LR_RETRIES:
                    raise
                params["lr"] = round(params.get("lr", 0.1) / 2, 4)
                self.log(f"  fastText aborted, its loss gone to NaN: again at half the learning rate, -lr {params['lr']}")

    def _training_file(self, part: Part, work: Path) -> Path:
        """The part in fastText's format, written once however often the part is fitted."""
        path = self._files.get(id(part))
        if path is None:
            path = self._files[id(part)] = work / "train.txt"
            ft.write_training_file(part.gold, part.lines, path)
        return path

    def _pretrain(self, binary: Path, part: Part, work: Path, pparams: dict) -> Path | None:
        """Word vectors on the part's texts and the preset's `corpus`; None when fastText fails on them."""
        corpus = pparams.get("corpus")
        corpus_lines = ft.corpus_lines(corpus) if corpus else []
        self.log(f"  fasttext {pparams.get('model', 'skipgram')} word vectors on the {len(part):,} training texts "
                 f"and {len(corpus_lines):,} texts of {corpus or 'no further corpus'}")
        text_file = work / "pretrain.text.txt"
        ft.write_lines(part.lines + corpus_lines, text_file)
        try:
            seconds = ft.pretrain(binary, text_file, work / "vectors", {k: v for k, v in pparams.items() if k != "corpus"},
                                  threads=self.options.threads)
        except ft.FastTextFailed as e:
            # fastText 0.9.3 can abort on NaN here for a very small corpus; the supervised model
            # trains fine without the vectors.
            self.log(f"  word-vector pretraining failed, continuing without pretrained vectors: {e}")
            return None
        (work / "vectors.bin").unlink(missing_ok=True)
        self.log(f"  word vectors in {seconds:.1f} s")
        return work / "vectors.vec"
