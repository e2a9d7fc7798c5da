#!/usr/bin/env bash
# promtool check + unit tests of the Prometheus rules, and the alert contract
# (severity, summary, description, runbook_url anchored in docs/runbook.md,
# a firing and a not-firing unit test per alert).
# Needs promtool (Debian package prometheus) and python3-yaml.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

if ! command -v promtool >/dev/null; then
  echo "FAIL promtool not found: install the Debian package prometheus" >&2
  exit 1
fi

echo "== promtool check rules"
promtool check rules dashboards/prometheus/recording-rules.yml dashboards/prometheus/alert-rules.yml

echo "== promtool test rules"
promtool test rules dashboards/prometheus/tests/*.yml

echo "== alert contract"
/usr/bin/python3 tests/ops/check_alert_contract.py

echo "check_rules: ok"
