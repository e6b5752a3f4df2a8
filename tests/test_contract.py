"""The HTTP contract, openapi.yaml: its served rendering, its agreement with the code and
docs/API.md, and schemathesis run with it against a real `serverless offline`.

schemathesis runs every check, with valid and invalid data (`generation.mode = all`) in each of
its phases (examples, coverage, fuzzing): MAX_EXAMPLES generated cases per operation, many more
under HYPOTHESIS_PROFILE=long (`make test-long`).
"""

import ast
import json
import os
import re
import sys

import pytest
import schemathesis
import yaml
from schemathesis.config import SchemathesisConfig

from handler import ROUTES
from support import NAMED_MODELS, ROOT

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
MAX_EXAMPLES = 3000 if PROFILE == "long" else 300
pytestmark = pytest.mark.timeout(7200 if PROFILE == "long" else 900)


def contract() -> dict:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def test_served_rendering_is_the_contract():
    assert json.loads((ROOT / "openapi.json").read_text()) == contract(), "openapi.json is stale: run `make openapi.json`"


def test_contract_has_every_route_the_function_answers():
    paths = contract()["paths"]
    assert paths.keys() == ROUTES.keys()
    for path, methods in ROUTES.items():
        # HEAD is GET without a body; OpenAPI 3.0 leaves it implicit.
        assert set(paths[path]) == {m.lower() for m in methods} - {"head"}, path
        for operation in paths[path].values():
            assert "405" in operation["responses"] and "500" in operation["responses"]


def error_table(markdown: str) -> list[tuple[int, tuple[str, ...], str]]:
    """Rows (status, codes, when) of the first `| status | code | when |` table in a Markdown text."""
    start = markdown.index("| status | code | when |")
    rows = []
    for line in markdown[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        status, codes, when = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((int(status), tuple(re.findall(r"`(\w+)`", codes)), when))
    return rows


def codes_raised_in_code() -> set[str]:
    """The error codes the runtime can answer with: the first argument of each InvalidRequest(...)
    and of each error type's call of its base's __init__ (contract.py), and the codes handler.py
    spells out."""
    codes = set()
    for module in ["handler.py", "contract.py", "recommender.py", "served_models.py", "explanations.py"]:
        for node in ast.walk(ast.parse((ROOT / module).read_text())):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in {"InvalidRequest", "__init__"} or (module == "handler.py" and name == "_error"):
                codes.add(node.args[0].value)
    return codes


def test_error_codes_agree_between_code_contract_and_api_guide():
    error = contract()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    table = error_table(error["description"])
    assert {code for _, codes, _ in table for code in codes} == set(error["enum"]) == codes_raised_in_code()
    guide = (ROOT / "docs" / "API.md").read_text()
    assert error_table(guide) == table, "docs/API.md's error table must say what openapi.yaml says"


def test_text_pattern_means_not_blank_as_the_code_does():
    """The schema's "not blank" is a character class of Python's white space (str.isspace, what
    str.strip removes), so that schemathesis and the function agree on every text."""
    pattern = contract()["components"]["schemas"]["Text"]["pattern"]
    blank = {chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(pattern, chr(c)) is None}
    assert blank == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def contract_of_the_test_service() -> dict:
    """openapi.json, the document the function serves (test_serverless.py checks it is), with the
    model names the offline service has: which names a deployment has is the deployment's, not the
    contract's (any other is a 400 unknown_model, which schemathesis then sends as invalid data)."""
    document = json.loads((ROOT / "openapi.json").read_text())
    document["components"]["schemas"]["ModelName"]["enum"] = ["default", *NAMED_MODELS]
    return document


# The server's URL is given per call: the offline server starts on a free port once the tests run.
schema = schemathesis.openapi.from_dict(
    contract_of_the_test_service(),
    config=SchemathesisConfig.from_dict({
        "checks": {
            "enabled": True,
            # A text over 20,000 characters (the schema's maxLength) is rejected with 413.
            "negative_data_rejection": {"expected-statuses": [400, 405, 413]},
        },
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
    }),
)


@schema.parametrize()
def test_serverless_offline_keeps_the_contract(case, offline):
    case.call_and_validate(base_url=offline.url)
