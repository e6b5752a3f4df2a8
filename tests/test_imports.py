"""The house's import graph: one way, no circles. The runtime (the top-level modules) imports
only itself, the standard library and what the Lambda Python runtime provides; nothing imports a test file; there is no import circle
among the runtime, training/, bench/ and tests/. (What ruff can check is in pyproject.toml.)"""

import ast
import sys
from pathlib import Path

from support import ROOT

RUNTIME = {p.stem for p in ROOT.glob("*.py")}
LAMBDA_PROVIDES = {"boto3", "botocore"}  # requirements.txt: used only for a model in S3


def module_name(path: Path) -> str:
    """How the house imports the file: `handler`, `training.train`, `benchlib`, `support`."""
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "training":
        package = ".".join(relative.parts[:-1])
        return f"{package}.{path.stem}" if path.stem != "__init__" else package
    return path.stem  # top level, and bench/ and tests/, which run with their own directory on sys.path


def house_modules() -> dict[str, Path]:
    files = [*ROOT.glob("*.py"), *(ROOT / "training").glob("*.py"), *(ROOT / "training" / "learners").glob("*.py"),
             *(ROOT / "bench").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    return {module_name(path): path for path in files}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The house modules `path` imports anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found - {module_name(path)}


def graph() -> dict[str, set[str]]:
    modules = house_modules()
    return {name: imports(path, modules) for name, path in modules.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules along it, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_there_is_no_import_circle():
    assert cycle(graph()) is None, " -> ".join(cycle(graph()))


def test_the_runtime_imports_only_itself_the_standard_library_and_boto3():
    assert "fasttext_format" in RUNTIME  # the model file's layout: the runtime reads headers with it
    edges = graph()
    for name in RUNTIME:
        assert edges[name] <= RUNTIME, f"{name} imports {sorted(edges[name] - RUNTIME)}"
        path = ROOT / f"{name}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0:
                top = (node.names[0].name if isinstance(node, ast.Import) else node.module).split(".")[0]
                assert top in RUNTIME | LAMBDA_PROVIDES or top in sys.stdlib_module_names, f"{name} imports {top}"


def test_no_file_imports_a_test_file():
    for name, targets in graph().items():
        assert not {t for t in targets if t.startswith("test_") or t == "conftest"}, f"{name} imports {targets}"


def test_the_checks_see_a_circle_and_a_test_import():
    """The checks themselves: a made-up graph with a circle and one without."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
    assert "support" in graph()["test_handler"]  # the graph sees the tests' imports


def test_the_runtime_depends_one_way_handler_then_recommender_then_the_rest():
    """handler.py is the entry point, recommender.py what it calls; the modules under them
    (contract, served_models, explanations, fasttext_process, model_source, text_cleaning)
    import neither, and nothing in the runtime imports training/."""
    edges = graph()
    for name in RUNTIME:
        assert "handler" not in edges[name], f"{name} imports handler"
        if name != "handler":
            assert "recommender" not in edges[name], f"{name} imports recommender"
        assert not any(t == "training" or t.startswith("training.") for t in edges[name]), f"{name} imports training"
    assert "recommender" in edges["handler"]
    assert {"contract", "served_models", "explanations"} <= edges["recommender"] | edges["handler"]


def test_the_learners_are_reached_through_their_registry_and_know_nothing_of_training_py():
    """Each learner is a module of training/learners/; train.py knows only the registry, and no learner
    imports another learner, train.py or evaluate.py; reading exports (dataset, prepare) imports no learner."""
    edges = graph()
    learners = {name for name in edges if name.startswith("training.learners.") and name != "training.learners.base"}
    assert {"training.learners.linear", "training.learners.fasttext_supervised"} <= learners
    assert not any(t in learners for t in edges["training.train"]), edges["training.train"]
    assert "training.learners" in edges["training.train"]
    for name in learners:
        assert not edges[name] & (learners | {"training.train", "training.evaluate", "training.learners"}), name
    for name in ("training.dataset", "training.prepare"):
        assert not any(t.startswith("training.learners") for t in edges[name]), name
