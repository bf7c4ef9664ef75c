#!/usr/bin/env bash
# Checks the example alerting rules: promtool (Debian's prometheus package) parses them and
# runs their unit tests, and every metric they name is one the services record.
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || { echo "check: promtool is required (apt-get install prometheus)"; exit 1; }
promtool check rules alerts.yml
promtool test rules alerts_test.yml
missing=0
for metric in $(grep -oE '\b(vps|grpc|http)_[a-z_]+' alerts.yml | sed -E 's/_(bucket|count|sum)$//' | sort -u); do
  if ! grep -rqF "\"$metric\"" ../../crates --include=*.rs; then
    echo "check: alerts.yml names $metric, which no service records" >&2
    missing=1
  fi
done
exit $missing
