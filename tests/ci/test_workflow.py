"""The README's CI sequence (check, lint, diff against the base branch) on a throwaway repo.

Real ``git`` and the real ``trackplan`` console script run as subprocesses, as in a GitHub
Actions job or a pre-commit hook.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.ci.ci_helpers import git, init_repo, run, trackplan_exe
from trackplan.ci.git import load_plan_at, resolve_spec
from trackplan.errors import InputError, PlanError
from trackplan.plan.load import load_plan

PLAN = "plans/ecommerce"
#: The commands of the README's workflow and pre-commit hook, base branch ``main``.
SEQUENCE = [
    ["check", PLAN],
    ["lint", PLAN],
    ["diff", "--base", "main", PLAN, "--format", "markdown"],
]
HOOK = f"trackplan check {PLAN} && trackplan lint {PLAN} && trackplan diff --base main {PLAN}"

OPTIONAL_NOTE = (
    "    gift_note: {type: [string, 'null'], maxLength: 200, description: Gift message.,"
    " x-pii: {category: free_text, action: redact}}\n"
)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """main holds the example plan; branch feature adds a compatible change and a v3."""
    root = init_repo(tmp_path / "repo")
    git(root, "checkout", "-q", "-b", "feature")
    events = root / PLAN / "events"
    with (events / "order-completed.v2.yaml").open("a") as fh:
        fh.write(OPTIONAL_NOTE)
    v3 = (events / "order-completed.v2.yaml").read_text().replace("version: 2", "version: 3")
    v3 = v3.replace(
        "required: [order_id, checkout_id, total, currency, products]",
        "required: [order_id, checkout_id, total, currency, products, tax]",
    )
    (events / "order-completed.v3.yaml").write_text(v3)
    git(root, "add", PLAN)
    git(root, "commit", "-q", "-m", "Add a gift note; v3 requires tax")
    return root


def _trackplan(root: Path, *args: str) -> tuple[int, str, str]:
    done = run([trackplan_exe(), *args], root)
    return done.returncode, done.stdout, done.stderr


def test_the_readme_sequence_passes_on_a_compatible_branch(repo: Path) -> None:
    for args in SEQUENCE:
        code, out, err = _trackplan(repo, *args)
        assert code == 0, (args, out, err)
    code, out, _ = _trackplan(repo, "diff", "--base", "main", PLAN, "--format", "json")
    body = json.loads(out)
    classes = {(c["event"], c["new_version"], c["property"]): c["class"] for c in body["changes"]}
    assert classes[("Order Completed", 2, "gift_note")] == "ADDITION"
    assert classes[("Order Completed", 3, "tax")] == "MODEL"
    assert body["ok"] is True
    assert any("new PII (free_text, action redact)" in p["reason"] for p in body["privacy"])
    # the hook, as pre-commit would run it
    hook = run(["sh", "-c", HOOK.replace("trackplan ", f"{trackplan_exe()} ")], repo)
    assert hook.returncode == 0, hook.stdout + hook.stderr


def test_the_sequence_fails_on_an_in_place_breaking_change(repo: Path) -> None:
    v2 = repo / PLAN / "events" / "order-completed.v2.yaml"
    _edit(
        v2,
        "loyalty_points: {type: integer, minimum: 0, maximum: 1000000",
        "loyalty_points: {type: string, maxLength: 9",
    )
    assert _trackplan(repo, "check", PLAN)[0] == 0
    assert _trackplan(repo, "lint", PLAN)[0] == 0
    code, out, _ = _trackplan(repo, *SEQUENCE[2])
    assert code == 1
    assert "**Order Completed**: MODEL change to version 2 without a new version" in out
    assert "type changed" in out
    # the committed branch is fine; only the working tree breaks the policy
    assert _trackplan(repo, "diff", "main", f"HEAD:{PLAN}")[0] == 0
    assert _trackplan(repo, "diff", "main", PLAN)[0] == 1
    assert _trackplan(repo, "diff", f"main:{PLAN}", PLAN)[0] == 1
    code, out, _ = _trackplan(repo, "diff", "--base", "main", PLAN, "--format", "github")
    assert code == 1
    assert out.startswith(f"::error file={PLAN}/events/order-completed.v2.yaml,line=")
    # from a subdirectory the plan path is relative to it
    code, _, err = _trackplan(repo / "plans", "diff", "--base", "main", "ecommerce")
    assert code == 1, err


def test_lint_errors_fail_the_sequence(repo: Path) -> None:
    _edit(
        repo / PLAN / "events" / "cart-viewed.yaml",
        "  properties:\n",
        "  properties:\n    customer_email: {type: string, maxLength: 99, description: E.}\n",
    )
    code, out, _ = _trackplan(repo, "lint", PLAN)
    assert code == 1 and "piiUndeclared" in out and "customer_email" in out


def test_plans_at_revisions_are_labelled_and_errors_are_clear(repo: Path) -> None:
    plan = load_plan_at("main", PLAN, repo)
    assert all(r.source.startswith(f"main:{PLAN}/") for r in plan.rules)
    assert len(resolve_spec("HEAD", default_path=PLAN, cwd=repo).versions("Order Completed")) == 3
    with pytest.raises(InputError, match="not a git revision"):
        load_plan_at("no-such-branch", PLAN, repo)
    with pytest.raises(InputError, match="does not exist at main"):
        load_plan_at("main", "plans/absent", repo)
    with pytest.raises(InputError, match="neither a plan path nor a git revision"):
        resolve_spec("no-such-thing", default_path=PLAN, cwd=repo)
    with pytest.raises(InputError, match="--plan"):
        resolve_spec("main", default_path=None, cwd=repo)
    # symlinks at a revision are not followed out of the plan
    (repo / PLAN / "events" / "linked.yaml").symlink_to("/etc/hostname")
    git(repo, "add", PLAN)
    git(repo, "commit", "-q", "-m", "Add a symlink")
    assert load_plan_at("HEAD", PLAN, repo).event_names == plan.event_names
    (repo / PLAN / "events" / "linked.yaml").unlink()
    git(repo, "commit", "-q", "-am", "Drop the symlink")
    # a broken plan at a revision names REV:path files, not a temporary directory
    _edit(repo / PLAN / "events" / "cart-viewed.yaml", "version: 1", "version: zero")
    git(repo, "commit", "-q", "-am", "Break the plan")
    with pytest.raises(PlanError) as caught:
        load_plan_at("HEAD", PLAN, repo)
    assert [i.file for i in caught.value.issues] == [f"HEAD:{PLAN}/events/cart-viewed.yaml"]
    code, _, err = _trackplan(repo, "diff", "--base", "HEAD", PLAN)
    assert code == 1 and f"HEAD:{PLAN}/events/cart-viewed.yaml" in err


def test_a_plan_new_at_the_base_is_all_additions(repo: Path) -> None:
    shutil.copytree(repo / PLAN, repo / "plans" / "newplan")
    code, out, err = _trackplan(repo, "diff", "--base", "main", "plans/newplan", "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["ok"] is True and body["changes"]
    assert {(c["kind"], c["class"]) for c in body["changes"]} == {("event added", "ADDITION")}
    assert len(body["events"]) == len(load_plan(repo / PLAN).rules)  # every rule, each new
    # committed on the branch, compared as revisions
    git(repo, "add", "plans/newplan")
    git(repo, "commit", "-q", "-m", "Add a second plan")
    code, out, err = _trackplan(repo, "diff", "main", "HEAD:plans/newplan")
    assert code == 0, err
    assert "MODEL" not in out


def test_git_is_asked_from_the_plan_directory(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    plan = str(repo / PLAN)
    code, out, err = _trackplan(outside, "diff", "--base", "main", plan, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    code, _, err = _trackplan(outside, "diff", "main", plan)
    assert code == 0, err


def test_usage_errors_exit_2(repo: Path) -> None:
    assert _trackplan(repo, "diff", PLAN)[0] == 2
    assert _trackplan(repo, "diff", "--base", "main")[0] == 2
    assert _trackplan(repo, "diff", "nope", PLAN)[0] == 2
    outside = repo.parent / "elsewhere"
    shutil.copytree(repo / PLAN, outside)
    code, _, err = _trackplan(outside, "diff", "--base", "main", ".")
    assert code == 2 and "not inside a git repository" in err
