"""GitHub annotations within GitHub's limits, and SARIF logs code scanning accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.ci.ci_helpers import run, trackplan_exe
from trackplan.ci.render import ANNOTATIONS_PER_TYPE, capped

#: The parts of the SARIF 2.1.0 schema (OASIS, sarif-schema-2.1.0.json) that GitHub code
#: scanning reads: version, runs, tool.driver (name, rules with ids), results with ruleId,
#: level, message.text and physical locations with a relative uri and a 1-based line.
SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {
                                                    "type": "object",
                                                    "required": ["text"],
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message", "ruleId", "level"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {"text": {"type": "string", "minLength": 1}},
                                },
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {
                                                            "uri": {
                                                                "type": "string",
                                                                "pattern": "^[^/]",
                                                            }
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            }
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def _check_sarif(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    jsonschema.Draft7Validator(SARIF_SUBSET).validate(log)
    run_ = log["runs"][0]
    ids = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    for result in run_["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
    return log


def _noisy_plan(tmp: Path, count: int) -> Path:
    props = {
        f"note_{i}": {"type": "string", "description": "A note."}  # no maxLength, no PII status
        for i in range(count)
    }
    props["user_email"] = {"type": "string", "maxLength": 9, "description": "E."}
    event = {
        "name": "Thing Done",
        "version": 1,
        "description": "D.",
        "properties": {"type": "object", "properties": props},
    }
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump({"trackplan": 1, "name": "T", "events": [event]}))
    return path


def test_capped_keeps_ten_per_type_and_says_how_many_more() -> None:
    lines = [f"::warning title=t::w{i}" for i in range(25)] + ["::error title=t::e"]
    out = capped(lines, tool="trackplan lint").splitlines()
    commands = [line for line in out if line.startswith("::")]
    assert sum(line.startswith("::warning") for line in commands) == ANNOTATIONS_PER_TYPE
    assert sum(line.startswith("::error") for line in commands) == 1
    [summary] = [line for line in commands if line.startswith("::notice")]
    assert "15 warning(s) more than GitHub shows per step" in summary
    # the rest stays in the log as plain text, none of it a workflow command
    rest = [line for line in out if not line.startswith("::")]
    assert len(rest) == 15 and rest[0] == "warning: w10"
    assert capped(lines[:3], tool="x") == "".join(line + "\n" for line in lines[:3])


def test_lint_github_output_stays_within_the_limit(tmp_path: Path) -> None:
    plan = _noisy_plan(tmp_path, 30)
    done = run([trackplan_exe(), "lint", "plan.yaml", "--format", "github"], tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    for level in ("error", "warning", "notice"):
        assert sum(line.startswith(f"::{level}") for line in lines) <= ANNOTATIONS_PER_TYPE
    assert lines[0].startswith("::error file=plan.yaml,line=")  # errors come first
    assert any("more than GitHub shows per step" in line for line in lines)
    text = run([trackplan_exe(), "lint", str(plan)], tmp_path).stdout
    # every finding is still in the output: annotated or listed plainly
    assert len(lines) - 1 == len(text.splitlines()) - 1


def test_lint_and_diff_write_sarif(tmp_path: Path) -> None:
    plan = _noisy_plan(tmp_path, 3)
    done = run([trackplan_exe(), "lint", "plan.yaml", "--format", "sarif"], tmp_path)
    assert done.returncode == 1
    log = _check_sarif(done.stdout)
    results = log["runs"][0]["results"]
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["piiUndeclared"] == "error" and levels["stringLength"] == "warning"
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "plan.yaml"
    assert location["region"]["startLine"] > 1
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert "PII" in rules["piiUndeclared"]["fullDescription"]["text"]

    new = tmp_path / "new.yaml"
    doc = yaml.safe_load(plan.read_text())
    doc["events"][0]["properties"]["required"] = ["note_0"]
    new.write_text(yaml.safe_dump(doc))
    diff = run([trackplan_exe(), "diff", "plan.yaml", "new.yaml", "--format", "sarif"], tmp_path)
    assert diff.returncode == 1
    log = _check_sarif(diff.stdout)
    by_rule = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    assert by_rule["diff/version-policy"]["level"] == "error"
    assert by_rule["diff/required-added"]["level"] == "warning"
    assert "MODEL" in by_rule["diff/required-added"]["message"]["text"]
