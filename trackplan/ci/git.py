"""Load a plan as it was at a git revision, with the one plan loader.

The files under the plan path at ``REV`` are exported with one ``git archive`` into a
temporary directory and loaded by :func:`trackplan.plan.load.load_plan`; file names in the
result (and in any :class:`PlanError`) read ``REV:path``, never the temporary directory.

>>> plan = resolve_spec("main", default_path="plans/ecommerce")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Literal, overload

from trackplan.errors import InputError, PlanError
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

__all__ = [
    "repo_root",
    "is_revision",
    "load_plan_at",
    "resolve_spec",
    "spec_path",
    "plan_dir",
    "empty_plan",
]


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise InputError("git is not installed: git revisions cannot be read") from exc


def repo_root(cwd: Path | None = None) -> Path:
    """The top directory of the git work tree holding ``cwd`` (raises InputError)."""
    here = Path.cwd() if cwd is None else cwd
    done = _git(["rev-parse", "--show-toplevel"], here)
    if done.returncode != 0:
        raise InputError(f"{here} is not inside a git repository: cannot read revisions")
    return Path(done.stdout.decode().strip())


def is_revision(rev: str, cwd: Path | None = None) -> bool:
    """Whether ``rev`` names a commit in the repository at ``cwd``."""
    if not rev or rev.startswith("-"):
        return False
    here = Path.cwd() if cwd is None else cwd
    done = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], here)
    return done.returncode == 0


def _repo_path(path: str, cwd: Path) -> str:
    """``path`` (relative to ``cwd`` or absolute) as a path relative to the repo root."""
    root = repo_root(cwd).resolve()
    target = (cwd / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    try:
        return target.relative_to(root).as_posix()
    except ValueError as exc:
        raise InputError(f"{path} is outside the git repository {root}") from exc


def plan_dir(path: str | Path, cwd: Path | None = None) -> Path:
    """The directory git is asked from for a plan at ``path``: the plan's own directory
    (or its nearest existing parent), so a run from outside the repository works."""
    here = Path.cwd() if cwd is None else cwd
    target = (here / path).resolve()
    for candidate in (target, *target.parents):
        if candidate.is_dir():
            return candidate
    return here


def empty_plan(like: Plan, *, label: str) -> Plan:
    """A plan with no rules, as a plan that does not exist yet at a revision: every rule of
    ``like`` then diffs as an addition."""
    return dataclasses.replace(like, rules=(), source=label)


@overload
def load_plan_at(rev: str, path: str, cwd: Path | None = None) -> Plan: ...
@overload
def load_plan_at(
    rev: str, path: str, cwd: Path | None = None, *, missing_ok: Literal[True]
) -> Plan | None: ...
def load_plan_at(
    rev: str, path: str, cwd: Path | None = None, *, missing_ok: bool = False
) -> Plan | None:
    """The plan at ``path`` (a directory or a file, relative to ``cwd``) as of ``rev``.

    Git runs in the plan's own directory (see :func:`plan_dir`). With ``missing_ok`` a
    path that does not exist at ``rev`` (a plan added by the change under review) gives
    None; otherwise it is an :class:`InputError`.
    """
    here = plan_dir(path, cwd)
    path = str(((Path.cwd() if cwd is None else cwd) / path).resolve())
    repo_root(here)  # says "not inside a git repository" before anything else
    if not is_revision(rev, here):
        raise InputError(f"{rev!r} is not a git revision of the repository")
    rel = _repo_path(path, here)
    label = f"{rev}:"
    with tempfile.TemporaryDirectory(prefix="trackplan-git-") as tmp:
        done = _git(["archive", "--format=tar", rev, "--", rel or "."], repo_root(here))
        if done.returncode != 0:
            if missing_ok and _absent_at(rev, rel, repo_root(here)):
                return None
            raise InputError(f"{path} does not exist at {rev}")
        _extract(done.stdout, Path(tmp))
        prefix = str(Path(tmp)) + "/"
        try:
            plan = load_plan(Path(tmp) / rel)
        except PlanError as exc:
            raise PlanError(
                [dataclasses.replace(i, file=_relabel(i.file, prefix, label)) for i in exc.issues]
            ) from None
    return _relabel_plan(plan, prefix, label)


def _absent_at(rev: str, rel: str, root: Path) -> bool:
    """Whether nothing exists at ``rel`` in ``rev`` (as opposed to another git failure)."""
    done = _git(["ls-tree", "--name-only", rev, "--", rel], root)
    return done.returncode == 0 and not done.stdout.strip()


def _extract(blob: bytes, dest: Path) -> None:
    """Unpack a ``git archive`` tar: regular files and directories only, inside ``dest``."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise InputError(f"refusing archive entry outside the plan: {member.name}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(source.read())
            # symlinks and other entries are skipped: a plan is plain files


def _relabel(name: str, prefix: str, label: str) -> str:
    return label + name[len(prefix) :] if name.startswith(prefix) else name


def _relabel_plan(plan: Plan, prefix: str, label: str) -> Plan:
    rules = tuple(
        dataclasses.replace(r, source=_relabel(r.source, prefix, label)) for r in plan.rules
    )
    sections = {k: _relabel(v, prefix, label) for k, v in plan.sections.items()}
    source = _relabel(plan.source, prefix, label)
    return dataclasses.replace(plan, rules=rules, sections=sections, source=source)


@overload
def resolve_spec(spec: str, *, default_path: str | None, cwd: Path | None = None) -> Plan: ...
@overload
def resolve_spec(
    spec: str, *, default_path: str | None, cwd: Path | None = None, missing_ok: bool
) -> Plan | None: ...
def resolve_spec(
    spec: str,
    *,
    default_path: str | None,
    cwd: Path | None = None,
    missing_ok: bool = False,
) -> Plan | None:
    """Load the plan a ``diff`` argument names.

    Args:
        spec: a plan path; ``REV:path``; or a bare revision (the plan then sits at
            ``default_path``, the other argument's path or ``--plan``).
        default_path: where the plan lives when ``spec`` is a bare revision; git is
            asked from its directory.
        missing_ok: give None when the path does not exist at the revision.
    """
    here = Path.cwd() if cwd is None else cwd
    if (here / spec).exists():
        return load_plan(here / spec)
    ask = plan_dir(default_path, here) if default_path is not None else here
    rev, sep, path = spec.partition(":")
    if sep and rev and is_revision(rev, ask):
        root = repo_root(ask)  # REV:path is relative to the top of the repository
        return load_plan_at(rev, path or ".", root, missing_ok=True) if missing_ok else (
            load_plan_at(rev, path or ".", root))
    if is_revision(spec, ask):
        if default_path is None:
            raise InputError(f"{spec!r} is a revision: say which plan with --plan PATH or REV:PATH")
        if missing_ok:
            return load_plan_at(spec, default_path, here, missing_ok=True)
        return load_plan_at(spec, default_path, here)
    raise InputError(f"{spec!r} is neither a plan path nor a git revision (REV or REV:PATH)")


def spec_path(spec: str, cwd: Path | None = None) -> str | None:
    """The plan path a ``diff`` argument names, if it names one (for the other side)."""
    here = Path.cwd() if cwd is None else cwd
    if (here / spec).exists():
        return spec
    rev, sep, path = spec.partition(":")
    if sep and rev and path and is_revision(rev, here):
        return str(repo_root(here) / path)
    return None
