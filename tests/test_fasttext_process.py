"""The long-lived fastText child process, driven through the real binary and a real tiny model."""

import hashlib
import os
import shutil
import signal
import threading
import time

import pytest

from fasttext_process import (
    Deadline,
    FastTextError,
    FastTextLoading,
    FastTextLoadTimeout,
    FastTextModelInvalid,
    FastTextProcess,
    FastTextTimeout,
    FastTextUnavailable,
    inspect_model_file,
    parse_answer,
    probabilities_of,
    read_model_header,
)
from support import TINY_TOPICS


@pytest.fixture
def process(tiny_model, fasttext_binary):
    proc = FastTextProcess(str(fasttext_binary), str(tiny_model), k=4, timeout=5)
    yield proc
    proc.close()


def child_pids() -> set[int]:
    """Live (or zombie) child processes of this test process."""
    me = str(os.getpid())
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                children.add(int(entry))
    return children


def top_label(answer):
    return answer[0][0]


def test_parse_answer_strips_prefix_and_undoes_fasttexts_probability_offset():
    answer = parse_answer("__label__python 1.00001 __label__web 0.25001 __label__cpp 1e-05")
    assert answer == [("python", 1.0), ("web", 0.25), ("cpp", 0.0)]
    assert parse_answer("") == []


def test_parse_answer_can_stop_after_the_pairs_a_caller_uses():
    line = "__label__a 0.50001 __label__b 0.25001 __label__c 0.12501"
    assert parse_answer(line, limit=2) == [("a", 0.5), ("b", 0.25)]
    assert parse_answer(line, limit=5) == parse_answer(line)


@pytest.mark.parametrize("line", ["__label__python", "python 0.5", "__label__a 0.1 __label__b"])
def test_parse_answer_rejects_what_fasttext_never_prints(line):
    with pytest.raises(FastTextError):
        parse_answer(line)


def test_answers_one_line_per_text_in_order(process):
    answers = process.predict(["python script interpreter", "http server browser", "sound music player"])
    assert [top_label(a) for a in answers] == ["python", "web", "audio"]
    assert all(len(a) == 4 for a in answers)
    assert all(a[i][1] >= a[i + 1][1] for a in answers for i in range(3))


def test_process_is_started_once_and_reused(process):
    assert process.pid is None
    process.predict(["python"])
    pid = process.pid
    for _ in range(20):
        process.predict(["compiler library"])
    assert process.pid == pid and process.starts == 1


def test_big_batch_does_not_deadlock_on_full_pipes(tiny_model, fasttext_binary):
    proc = FastTextProcess(str(fasttext_binary), str(tiny_model), k=50, timeout=20)
    try:
        words = " ".join(TINY_TOPICS["web"].split() * 500)
        answers = proc.predict([words] * 100)
        assert len(answers) == 100 and all(top_label(a) == "web" for a in answers)
    finally:
        proc.close()


def test_killed_between_requests_restarts_transparently(process):
    process.predict(["python"])
    old = process.pid
    os.kill(old, signal.SIGKILL)
    time.sleep(0.1)
    assert top_label(process.predict(["python script"])[0]) == "python"
    assert process.pid != old and process.starts == 2


def test_killed_during_request_is_retried_once(process, monkeypatch):
    process.predict(["python"])
    real_exchange = process._exchange
    calls = []

    def kill_then_exchange(proc, payload, expected, deadline):
        if payload:  # not the empty line that tells the process has loaded
            calls.append(proc.pid)
            if len(calls) == 1:
                os.kill(proc.pid, signal.SIGKILL)
        return real_exchange(proc, payload, expected, deadline)

    monkeypatch.setattr(process, "_exchange", kill_then_exchange)
    assert top_label(process.predict(["sound music"])[0]) == "audio"
    assert len(calls) == 2 and calls[0] != calls[1]


def test_dies_twice_in_one_request_gives_unavailable(process, monkeypatch):
    real_exchange = process._exchange

    def always_kill(proc, payload, expected, deadline):
        os.kill(proc.pid, signal.SIGKILL)
        return real_exchange(proc, payload, expected, deadline)

    monkeypatch.setattr(process, "_exchange", always_kill)
    with pytest.raises(FastTextUnavailable, match="killed by signal SIGKILL"):
        process.predict(["python"])
    monkeypatch.undo()
    assert top_label(process.predict(["python"])[0]) == "python"


def test_hung_process_times_out_is_killed_and_replaced(tiny_model, fasttext_binary):
    proc = FastTextProcess(str(fasttext_binary), str(tiny_model), k=4, timeout=0.5)
    try:
        proc.predict(["python"])
        stuck = proc.pid
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(FastTextTimeout, match=r"did not answer by the request's deadline$"):
            proc.predict(["python"])
        assert time.monotonic() - started < 3
        assert not os.path.exists(f"/proc/{stuck}")
        assert top_label(proc.predict(["python"])[0]) == "python"
    finally:
        proc.close()


def test_binary_that_never_answers_times_out(tmp_path, tiny_model):
    silent = tmp_path / "fasttext"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    proc = FastTextProcess(str(silent), str(tiny_model), k=4, timeout=1, load_timeout=0.3)
    with pytest.raises(FastTextLoadTimeout):
        proc.predict(["python"])
    assert proc.pid is None


def test_missing_binary_is_named_then_recovers(tmp_path, tiny_model, fasttext_binary):
    binary = tmp_path / "fasttext"
    proc = FastTextProcess(str(binary), str(tiny_model), k=4, timeout=5)
    with pytest.raises(FastTextUnavailable, match=f"fastText binary {binary} is missing"):
        proc.predict(["python"])
    shutil.copy(fasttext_binary, binary)
    binary.chmod(0o644)
    with pytest.raises(FastTextUnavailable, match="is not executable"):
        proc.predict(["python"])
    binary.chmod(0o755)
    try:
        assert top_label(proc.predict(["python"])[0]) == "python"
    finally:
        proc.close()


def test_missing_model_is_named_then_recovers(tmp_path, tiny_model, fasttext_binary):
    model = tmp_path / "model.bin"
    proc = FastTextProcess(str(fasttext_binary), str(model), k=4, timeout=5)
    with pytest.raises(FastTextUnavailable, match=f"model file {model} cannot be read"):
        proc.predict(["python"])
    shutil.copy(tiny_model, model)
    try:
        assert top_label(proc.predict(["python"])[0]) == "python"
    finally:
        proc.close()


def test_not_a_model_is_rejected_before_starting(tmp_path, fasttext_binary):
    model = tmp_path / "model.bin"
    model.write_bytes(b"this is not a fastText model at all, just some bytes" * 4)
    proc = FastTextProcess(str(fasttext_binary), str(model), k=4, timeout=5)
    with pytest.raises(FastTextUnavailable, match="is not a fastText model"):
        proc.predict(["python"])
    assert proc.pid is None


@pytest.mark.parametrize("kept", [200, 0.5, -1])
def test_truncated_model_is_refused_before_starting(tmp_path, tiny_model, fasttext_binary, kept):
    """fastText 0.9.3 spins forever on some truncated files: one cut anywhere (in the dictionary,
    in a matrix, its last byte) is refused without starting a process."""
    whole = tiny_model.read_bytes()
    model = tmp_path / "model.bin"
    model.write_bytes(whole[:int(len(whole) * kept) if isinstance(kept, float) else kept])
    before = child_pids()
    proc = FastTextProcess(str(fasttext_binary), str(model), k=4, timeout=0.5)
    with pytest.raises(FastTextModelInvalid, match=f"model file {model} is not a whole fastText model"):
        proc.predict(["python"])
    assert proc.pid is None
    assert child_pids() == before


def test_inspect_model_file_gives_the_header_and_the_digest(tiny_model):
    facts = inspect_model_file(str(tiny_model))
    assert facts.header == read_model_header(str(tiny_model))
    assert facts.sha256 == hashlib.sha256(tiny_model.read_bytes()).hexdigest()


def slow_binary(tmp_path, fasttext_binary, seconds: float):
    """A wrapper that waits `seconds` before it runs the real binary: a model slow to load."""
    wrapper = tmp_path / "slow-fasttext"
    wrapper.write_text(f"#!/bin/sh\nsleep {seconds}\nexec {fasttext_binary} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def test_a_deadline_that_comes_while_the_model_loads_leaves_it_loading(tmp_path, tiny_model, fasttext_binary):
    proc = FastTextProcess(str(slow_binary(tmp_path, fasttext_binary, 1)), str(tiny_model), k=4, timeout=0.3,
                           load_timeout=10)
    try:
        with pytest.raises(FastTextLoading):
            proc.predict(["python"])
        pid = proc.pid
        assert proc.running and not proc.ready
        while True:
            try:
                answer = proc.predict(["python"], deadline=Deadline(0.3))
                break
            except FastTextLoading:
                pass
        assert top_label(answer[0]) == "python"
        assert proc.pid == pid and proc.starts == 1 and proc.ready
    finally:
        proc.close()


def test_a_model_that_does_not_load_within_its_limit_is_killed(tmp_path, tiny_model, fasttext_binary):
    proc = FastTextProcess(str(slow_binary(tmp_path, fasttext_binary, 30)), str(tiny_model), k=4, timeout=0.3,
                           load_timeout=0.5)
    with pytest.raises(FastTextLoading):
        proc.predict(["python"])
    with pytest.raises(FastTextLoadTimeout, match="did not load model .* within 0.5 s"):
        proc.predict(["python"])
    assert proc.pid is None


def test_read_model_header(tiny_model):
    header = read_model_header(str(tiny_model))
    assert (header.labels, header.dim) == (4, 10)
    assert header.words > 20


def test_concurrent_callers_each_get_their_own_answer(process):
    texts = [TINY_TOPICS[name].split()[i % 5] + " " + TINY_TOPICS[name].split()[(i + 1) % 5]
             for i, name in enumerate(sorted(TINY_TOPICS) * 10)]
    alone = {text: process.predict([text])[0] for text in texts}
    results, errors = {}, []

    def ask(text):
        try:
            for _ in range(10):
                answer = process.predict([text])[0]
                results.setdefault(text, []).append(answer)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for text, answers in results.items():
        assert all(a == alone[text] for a in answers), text


def test_no_zombies_or_leaked_processes_after_faults(tiny_model, fasttext_binary):
    before = child_pids()
    proc = FastTextProcess(str(fasttext_binary), str(tiny_model), k=4, timeout=0.5)
    proc.predict(["python"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.predict(["python"])
    os.kill(proc.pid, signal.SIGSTOP)
    with pytest.raises(FastTextTimeout):
        proc.predict(["python"])
    proc.predict(["python"])
    assert child_pids() == before | {proc.pid}
    proc.close()
    assert child_pids() == before


def test_probabilities_of_reads_the_labels_asked_for_as_parse_answer_does():
    line = "__label__c++ 0.912 __label__c 0.5 __label__web 1.00001 __label__x 1e-05 __label__go 0.30001"
    assert probabilities_of(line, ["c++", "web", "x", "go", "c", "python", "c+"]) == (
        {label: p for label, p in parse_answer(line) if label != "python"}, 5)
    assert probabilities_of(line, []) == ({}, 5)
    with pytest.raises(FastTextError, match="could not be parsed"):
        probabilities_of("__label__a nonsense __label__b 0.1", ["a"])
