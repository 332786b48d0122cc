#!/usr/bin/env bash
# Self-tests of scripts/check-monitoring.sh: it must pass on this tree, and
# fail with a message naming the problem on copies of it broken one way each.
#   scripts/check-monitoring-tests/run.sh    prints one line per case, exits non-zero if any case misbehaves
# Each case copies the files the checker reads (compose.yaml, Dockerfile,
# deploy/, docs/*.md, service/src, cli/src) into a throwaway folder under
# /tmp, applies one change, runs the checker on the copy with --root and
# expects a non-zero exit and the given text. Cases run $XIAOER_CHECK_JOBS
# (default 2) at a time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# run_case, case_, replace and the summary, shared with the other checker's self-tests.
# shellcheck source-path=SCRIPTDIR source=../lib/broken-copies.sh
. "$repo/scripts/lib/broken-copies.sh"
broken_copies_start check-monitoring 160

# The pristine copy, made once; every case starts from a copy of it.
mkdir -p "$pristine/docs" "$pristine/service" "$pristine/cli"
cp -a "$repo/compose.yaml" "$repo/Dockerfile" "$repo/deploy" "$pristine/"
cp -a "$repo"/docs/*.md "$pristine/docs/"
cp -a "$repo/service/src" "$pristine/service/"
cp -a "$repo/cli/src" "$pristine/cli/"

# Edits the dashboard with Python: `d` is the dashboard, `panel(TITLE)` a panel.
dash() { # PYTHON-STATEMENTS
  python3 - "$1" <<'PY'
import json, sys
path = "deploy/monitoring/grafana/xiaoer-dashboard.json"
d = json.load(open(path))
def panel(title):
    found = [p for p in d["panels"] if p.get("title") == title]
    if not found:
        sys.exit(f"self-test setup: no panel {title!r}")
    return found[0]
exec(sys.argv[1])
json.dump(d, open(path, "w"), indent=2, ensure_ascii=False)
PY
}

mon=deploy/monitoring
rules=$mon/xiaoer-alerts.yaml

# 0. The unchanged copy passes (run alone first: it may fetch promtool).
unchanged_case 140

# Alert rules.
case_ "rule with bad PromQL" "xiaoer-alerts.yaml: \`promtool check rules\` failed" \
  "replace $rules 'expr: xiaoer_database_up == 0' 'expr: xiaoer_database_up == '"
case_ "rule threshold no longer what its unit test expects" "xiaoer-alerts.test.yaml: \`promtool test rules\` failed" \
  "replace $rules '> 0.05' '> 0.5'"
case_ "alert without severity" "alert XiaoerDatabaseDown: needs a severity label" \
  "replace $rules 'severity: critical' 'priority: critical'"
case_ "runbook to a heading that does not exist" "runbook 'docs/operations.md#database-outage': docs/operations.md has no heading with the anchor #database-outage" \
  "replace $rules 'docs/operations.md#database-outages' 'docs/operations.md#database-outage'"
case_ "rule using a metric the server does not export" "alert XiaoerDatabaseDown: uses xiaoer_db_up, which the server does not export" \
  "replace $rules 'expr: xiaoer_database_up == 0' 'expr: xiaoer_db_up == 0'"
case_ "rule with the code in the wrong spelling" "code='RESOURCE_EXHAUSTED' is not a tonic code name" \
  "replace $rules 'code=\"ResourceExhausted\"' 'code=\"RESOURCE_EXHAUSTED\"'"
case_ "metric removed from the server" "uses xiaoer_queue_overdue, which the server does not export" \
  "grep -rl 'gauge!(\"xiaoer_queue_overdue\"' service/src | xargs sed -i '/gauge!(\"xiaoer_queue_overdue\"/d'"
# Dashboard.
case_ "dashboard using a metric the server does not export" "'Handoffs waiting by queue' target A: uses xiaoer_queue_depth, which the server does not export" \
  "dash 'panel(\"Handoffs waiting by queue\")[\"targets\"][0][\"expr\"] = \"max by (queue) (xiaoer_queue_depth)\"'"
case_ "dashboard using a histogram by its bare name" "uses xiaoer_rpc_latency_seconds, a histogram, by its bare name" \
  "dash 'panel(\"Reply latency p50 and p99\")[\"targets\"][0][\"expr\"] = \"sum(rate(xiaoer_rpc_latency_seconds[5m]))\"'"
case_ "dashboard grouping by a label no metric has" "by (queues): no metric of the expression has the label 'queues'" \
  "dash 'panel(\"Handoffs waiting by queue\")[\"targets\"][0][\"expr\"] = \"max by (queues) (xiaoer_queue_waiting)\"'"
case_ "dashboard selecting a label the metric lacks" "xiaoer_replies_total has no label 'actions'" \
  "dash 'panel(\"Replies per second by action\")[\"targets\"][0][\"expr\"] = \"sum(rate(xiaoer_replies_total{actions=\\\"answer\\\"}[5m]))\"'"
case_ "dashboard naming an RPC the server does not have" "rpc='AutoReply/Replies' is not an RPC the server names" \
  "dash 'e = panel(\"Reply latency p50 and p99\")[\"targets\"][1]; e[\"expr\"] = e[\"expr\"].replace(\"AutoReply/Reply\", \"AutoReply/Replies\")'"
case_ "dashboard panel without targets" "'Average rating': has no targets" \
  "dash 'del panel(\"Average rating\")[\"targets\"]'"
case_ "dashboard panel without a title" "has no title" \
  "dash 'panel(\"Open watch streams\")[\"title\"] = \"\"'"
case_ "dashboard panel with invalid PromQL" "'Replies per second by action' target A: not valid PromQL" \
  "dash 'panel(\"Replies per second by action\")[\"targets\"][0][\"expr\"] = \"sum by (action (rate(xiaoer_replies_total[\$__rate_interval]))\"'"
case_ "dashboard that is not JSON" "xiaoer-dashboard.json: not valid JSON" \
  "echo ',' >> $mon/grafana/xiaoer-dashboard.json"
case_ "dashboard with a hard-coded datasource" "datasource 'P1809F7CD0C75ACF3' is neither the dashboard's datasource variable nor a provisioned uid" \
  "dash 'panel(\"Open watch streams\")[\"datasource\"] = {\"type\": \"prometheus\", \"uid\": \"P1809F7CD0C75ACF3\"}'"
# Prometheus configuration and compose.
case_ "prometheus.yml naming a rule file that does not exist" "prometheus.yml: \`promtool check config\` failed" \
  "replace $mon/prometheus.yml '  - xiaoer-alerts.yaml' '  - xiaoer-alert.yaml'"
case_ "replica missing from the scrape job" "missing xiaoer-b:9464" \
  "replace $mon/prometheus.yml '          - xiaoer-b:9464
' ''"
case_ "rules not mounted into the Prometheus container" "so deploy/monitoring/xiaoer-alerts.yaml must be mounted at /etc/prometheus/xiaoer-alerts.yaml" \
  "replace compose.yaml '      - ./deploy/monitoring/xiaoer-alerts.yaml:/etc/prometheus/xiaoer-alerts.yaml:ro
' ''"
case_ "dashboard mounted outside the provider's folder" "outside the provider's folder" \
  "replace compose.yaml ':/etc/grafana/dashboards/xiaoer/xiaoer-dashboard.json:ro' ':/etc/grafana/dashboards/other/xiaoer-dashboard.json:ro'"
case_ "Grafana's home dashboard not the mounted one" "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH" \
  "replace compose.yaml 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /etc/grafana/dashboards/xiaoer/xiaoer-dashboard.json' 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /etc/grafana/dashboards/xiaoer.json'"

broken_copies_finish
