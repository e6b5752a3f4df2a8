"""The fastText binaries built by the setup: static, generic, and giving the same answers on x86_64 and arm64."""

import gzip
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT
from text_cleaning import clean_text


def describe(file_command: str, path: Path) -> str:
    return subprocess.run([file_command, "-bL", str(path)], capture_output=True, text=True, check=True).stdout


def validation_texts(n: int) -> list[str]:
    with gzip.open(ROOT / "data" / "valid.tsv.gz", "rt", encoding="utf-8") as f:
        return [clean_text(next(f).split("\t")[3]) for _ in range(n)]


def predict(command: list[str], model: Path, texts: list[str]) -> list[str]:
    result = subprocess.run(
        command + ["predict-prob", str(model), "-", "5"],
        input="".join(t + "\n" for t in texts), capture_output=True, text=True, check=True, timeout=300,
    )
    return result.stdout.splitlines()


def test_x86_64_binary_is_static_stripped_and_generic(fasttext_binary, file_command):
    description = describe(file_command, fasttext_binary)
    assert "x86-64" in description
    assert "statically linked" in description and "stripped" in description and "not stripped" not in description


def test_arm64_binary_is_static_and_stripped(fasttext_arm64, file_command):
    description = describe(file_command, fasttext_arm64)
    assert "ARM aarch64" in description and "statically linked" in description and "not stripped" not in description


def test_binary_answers_predict_prob_on_stdin(fasttext_binary, tiny_model):
    answers = predict([str(fasttext_binary)], tiny_model, ["python pip module", "mp3 music player"])
    assert [line.split()[0] for line in answers] == ["__label__python", "__label__audio"]
    assert all(len(line.split()) == 8 for line in answers)  # 4 labels, each with a probability


def test_sdist_was_checked_against_the_pinned_sha256():
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"FASTTEXT_SDIST_SHA256 := ([0-9a-f]{64})", makefile).group(1)
    sdist = ROOT / "build" / "fasttext-0.9.3.tar.gz"
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == pinned


@pytest.mark.parametrize("model", ["tiny", "shipped"])
def test_arm64_gives_the_same_answers_as_x86_64(fasttext_binary, fasttext_arm64, request, model):
    qemu = shutil.which("qemu-aarch64-static")
    assert qemu, "qemu-user-static is installed by `make setup`"
    model_path = request.getfixturevalue("tiny_model" if model == "tiny" else "shipped_model")
    texts = validation_texts(200)
    x86 = predict([str(fasttext_binary)], model_path, texts)
    arm = predict([qemu, str(fasttext_arm64)], model_path, texts)
    assert len(x86) == len(texts)
    assert arm == x86
