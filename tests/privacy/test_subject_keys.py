"""Subject hashes (audit log, suppression lists) are keyed by default with the plan's key."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from trackplan.errors import MissingSecretError
from trackplan.privacy.suppression import (
    KEY_ENV,
    SuppressionList,
    key_check,
    subject_hash,
    subject_key,
)

from .erase_data import ANON, USER, make_dataset
from .privacy_helpers import ROOT

HASH_ENV = "TRACKPLAN_HASH_KEY"


def _env(**set_: str) -> dict[str, str]:
    """The environment of a CLI run with only the given keys set (both unset otherwise)."""
    env = {k: v for k, v in os.environ.items() if k not in (HASH_ENV, KEY_ENV, "SHOP_KEY")}
    return {**env, **set_}


def _audit(log: Path) -> dict[str, object]:
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert entries[-1]["status"] == "done"
    return entries[-1]


def _run(
    tmp_path: Path, *extra: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    make_dataset(tmp_path / "d")
    log = tmp_path / "audit.log"
    result = run_cli_env("erase", "--user-id", USER, str(tmp_path / "d"),
                         "--audit-log", str(log), *extra, env=env)  # fmt: skip
    return result, log


def run_cli_env(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m trackplan ARGS`` in exactly ``env`` (``run_cli`` adds the test key)."""
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=env,
    )  # fmt: skip


def test_the_plans_hash_key_keys_the_audit_log_by_default(tmp_path: Path) -> None:
    result, log = _run(tmp_path, env=_env(TRACKPLAN_HASH_KEY="plan-key"))
    assert result.returncode == 0, result.stderr
    entry = _audit(log)
    assert entry["hash"] == "hmac-sha256"
    want = hmac.new(b"plan-key", USER.encode(), hashlib.sha256).hexdigest()
    assert entry["subjects"] == [{"type": "userId", "hash": want}]
    assert USER not in log.read_text()


def test_a_subject_key_of_its_own_wins_over_the_plans(tmp_path: Path) -> None:
    result, log = _run(tmp_path, env=_env(TRACKPLAN_HASH_KEY="plan-key", **{KEY_ENV: "own"}))
    assert result.returncode == 0
    assert _audit(log)["subjects"] == [{"type": "userId", "hash": subject_hash(USER, b"own")}]


def test_no_key_is_an_error_naming_both_variables_and_no_id(tmp_path: Path) -> None:
    result, log = _run(tmp_path, env=_env())
    assert result.returncode != 0
    err = result.stderr
    assert HASH_ENV in err and KEY_ENV in err and "--unkeyed-subject-hashes" in err
    assert USER not in err and not log.exists()


def test_unkeyed_hashes_only_by_explicit_choice_and_with_a_warning(tmp_path: Path) -> None:
    result, log = _run(tmp_path, "--unkeyed-subject-hashes", env=_env(TRACKPLAN_HASH_KEY="k"))
    assert result.returncode == 0
    assert "warning: subject hashes are plain SHA-256" in result.stderr
    entry = _audit(log)
    assert entry["hash"] == "sha256"
    assert entry["subjects"] == [
        {"type": "userId", "hash": hashlib.sha256(USER.encode()).hexdigest()}
    ]


def test_the_variable_the_plan_names_keys_the_hashes(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("trackplan: 1\nname: shop\npii:\n  hash_key_env: SHOP_KEY\n")
    result, log = _run(tmp_path, "--plan", str(plan), env=_env(SHOP_KEY="shop-key"))
    assert result.returncode == 0, result.stderr
    assert _audit(log)["subjects"] == [{"type": "userId", "hash": subject_hash(USER, b"shop-key")}]


def test_a_list_made_by_erase_blocks_the_subject_in_route(tmp_path: Path) -> None:
    make_dataset(tmp_path / "d")
    slist = tmp_path / "suppressed.txt"
    env = _env(TRACKPLAN_HASH_KEY="plan-key")
    made = run_cli_env("erase", "--anonymous-id", ANON, str(tmp_path / "d"), "--suppress",
                       str(slist), env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    text = slist.read_text()
    assert "# scheme: hmac-sha256" in text and f"# key-check: {key_check(b'plan-key')}" in text
    event = {"type": "track", "event": "Product Viewed", "anonymousId": ANON,
             "properties": {"product_id": "p-1", "price": 1}}  # fmt: skip
    events = tmp_path / "e.ndjson"
    events.write_bytes(orjson.dumps(event) + b"\n")
    plan = str(Path(__file__).resolve().parents[2] / "plans" / "ecommerce")
    routed = run_cli_env("route", plan, str(events), "--suppression", str(slist), env=env)
    line = orjson.loads(routed.stdout.splitlines()[0])
    assert line["allowed"] is False
    assert [v["type"] for v in line["violations"]] == ["Suppressed"]


def test_loading_a_list_with_another_key_fails_instead_of_matching_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.txt"
    SuppressionList.from_ids(["u-1"], key=b"first").write(path)
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(HASH_ENV, "second")
    with pytest.raises(MissingSecretError, match="another key"):
        SuppressionList.load(path)
    monkeypatch.setenv(KEY_ENV, "first")
    assert SuppressionList.load(path).contains("u-1")
    assert subject_key(check=key_check(b"second")) == b"second"  # the plan's key matches
