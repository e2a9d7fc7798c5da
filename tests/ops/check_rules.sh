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

echo "== the PrometheusRule generator bakes base URLs into valid rules"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 deploy/k8s/gen-prometheusrule.py --admin-url https://wsgate-admin.example.com \
  --runbook-url https://git.example.com/wsgate/docs/runbook.md --output "$tmp/rule.yaml" >/dev/null
/usr/bin/python3 - "$tmp/rule.yaml" "$tmp/rules.yml" <<'PYEOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
text = open(sys.argv[1]).read()
for want in ('"https://wsgate-admin.example.com"', '"https://git.example.com/wsgate/docs/runbook.md"'):
    assert want in text, f"generator did not bake {want}"
assert "$externalLabels.wsgate_" not in text, "generator left an external label reference"
yaml.safe_dump({"groups": doc["spec"]["groups"]}, open(sys.argv[2], "w"))
PYEOF
promtool check rules "$tmp/rules.yml" >/dev/null

echo "== alert contract"
/usr/bin/python3 tests/ops/check_alert_contract.py

echo "check_rules: ok"
