#!/usr/bin/env bash
# The body of action.yml (kept in a script so it can be run and tested outside GitHub).
#
# Environment: TRACKPLAN_PLANS (space-separated plan paths), TRACKPLAN_BASE (revision to
# diff against; empty: no diff), TRACKPLAN_STRICT (true: lint warnings fail),
# TRACKPLAN_SARIF (where to write the merged SARIF log), and GitHub's GITHUB_STEP_SUMMARY
# and GITHUB_OUTPUT (files; optional). Every command runs for every plan, so one run
# reports everything; the exit status is 1 if any of them failed, 2 on bad usage.
set -u
plans=${TRACKPLAN_PLANS:?set TRACKPLAN_PLANS to the plan paths}
base=${TRACKPLAN_BASE:-}
sarif=${TRACKPLAN_SARIF:-trackplan.sarif}
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
strict=()
if [ "${TRACKPLAN_STRICT:-false}" = "true" ]; then strict=(--strict); fi
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
status=0

note() {  # keep the worst exit status (2 usage beats 1 failure)
  if [ "$1" -gt "$status" ]; then status=$1; fi
}

i=0
for plan in $plans; do
  i=$((i + 1))
  echo "::group::trackplan check $plan"
  trackplan check "$plan" --format github; note $?
  echo "::endgroup::"
  trackplan check "$plan" --format sarif -o "$parts/$i-check.sarif" >/dev/null
  echo "::group::trackplan lint $plan"
  trackplan lint "$plan" "${strict[@]}" --format github; note $?
  echo "::endgroup::"
  trackplan lint "$plan" --format sarif -o "$parts/$i-lint.sarif" >/dev/null
  if [ -n "$base" ]; then
    echo "::group::trackplan diff --base $base $plan"
    trackplan diff --base "$base" "$plan" --format github; note $?
    echo "::endgroup::"
    trackplan diff --base "$base" "$plan" --format markdown >>"$summary"
    trackplan diff --base "$base" "$plan" --format sarif -o "$parts/$i-diff.sarif" >/dev/null
  fi
done

python -m trackplan.ci.sarif "$sarif" "$parts"/*.sarif && {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "sarif-file=$sarif" >>"$GITHUB_OUTPUT"; fi
}
exit "$status"
