#!/usr/bin/env bash
# Monitoring guard (issue #23, "Live numbers"): the Prometheus alert rules, the
# compose Prometheus configuration and the Grafana dashboard, checked offline
# in a few seconds.
#   scripts/check-monitoring.sh               exits non-zero with one line per problem
#   scripts/check-monitoring.sh --root DIR    check the tree at DIR (the self-tests check broken copies)
#
# What it checks (docs/insights.md, "What CI checks"):
# - deploy/monitoring/xiaoer-alerts.yaml with `promtool check rules`, and its
#   unit tests deploy/monitoring/xiaoer-alerts.test.yaml with `promtool test
#   rules` (each alert fires over its threshold and stays quiet under it);
# - every alert has a severity label (critical, warning or info), summary and
#   description annotations, and a runbook annotation `path.md#anchor` naming
#   a heading that exists in that file;
# - deploy/monitoring/prometheus.yml with `promtool check config` (which loads
#   the rule files it names, relative to itself); its job "xiaoer" scrapes
#   exactly compose.yaml's xiaoer replicas on their metrics port;
# - compose.yaml mounts what Prometheus and Grafana read: the config and each
#   rule file side by side, the datasource and dashboard provisioning, the
#   dashboard into the provider's folder (and Grafana's home dashboard path
#   is that file); the datasource URL names the prometheus service; every
#   mounted file exists;
# - deploy/monitoring/grafana/xiaoer-dashboard.json parses, every panel (rows
#   aside) has a title, a description and at least one target with a PromQL
#   expression, panel ids are unique, and every panel and target uses the
#   dashboard's datasource variable;
# - every dashboard expression is valid PromQL (Grafana's $__rate_interval,
#   $__interval and $__range replaced by durations; checked by promtool);
# - every metric name in the rules and the dashboard (xiaoer_*) is one the
#   server exports: a counter!/gauge!/histogram! call with that name (or with
#   a const holding it) in service/src or cli/src, unit-test files aside; a
#   histogram only as _bucket, _sum or _count; label names in selectors and
#   in by/without clauses are labels the source sets (plus instance, job, and
#   le on _bucket); `code` values are tonic code names (Ok, ResourceExhausted,
#   ...) and `rpc` values are RPC names the source uses ("AutoReply/Reply").
#
# Tools: promtool from Debian's `prometheus` package. When no promtool is on
# the PATH, the package is fetched with `apt-get download` and only promtool
# is unpacked into target/tools/check-monitoring: installing the package would
# pull in a Prometheus server (and its JavaScript libraries) and, under
# systemd, start it on port 9090. PyYAML from Debian's python3-yaml when
# python3 lacks it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Arguments (--root, --help) and apt_install, shared with the other checker.
# shellcheck source-path=SCRIPTDIR source=lib/check-common.sh
. "$here/scripts/lib/check-common.sh"
check_args check-monitoring "$@"

tools=$here/target/tools/check-monitoring
if command -v promtool >/dev/null 2>&1; then
  promtool=$(command -v promtool)
elif [ -x "$tools/promtool" ]; then
  promtool=$tools/promtool
else
  candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: \([0-9]\)/\1/p'; }
  [ -n "$(candidate)" ] || $sudo apt-get update -qq >&2
  if [ -z "$(candidate)" ]; then
    echo "check-monitoring: Debian's prometheus package (which holds promtool) is not available from this machine's apt sources" >&2
    exit 1
  fi
  echo "check-monitoring: fetching promtool from Debian's prometheus package into $tools..." >&2
  dl=$(mktemp -d /tmp/xiaoer-promtool.XXXXXX)
  # (As root apt warns that it downloads unsandboxed; the log shows only on failure.)
  if ! (cd "$dl" && apt-get download -q prometheus) >"$dl/log" 2>&1; then
    cat "$dl/log" >&2
    rm -rf "$dl"
    exit 1
  fi
  dpkg-deb --fsys-tarfile "$dl"/prometheus_*.deb | tar -x -C "$dl" ./usr/bin/promtool
  mkdir -p "$tools"
  # Several checks may fetch at once (the self-tests): rename into place.
  mv "$dl/usr/bin/promtool" "$tools/promtool.$$"
  mv -f "$tools/promtool.$$" "$tools/promtool"
  rm -rf "$dl"
  promtool=$tools/promtool
fi
"$promtool" --version >/dev/null

python3 -c 'import yaml' >/dev/null 2>&1 || apt_install python3-yaml

exec python3 - "$root" "$promtool" <<'PY'
import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

root = Path(sys.argv[1])
promtool = sys.argv[2]
errors: list[str] = []
done: list[str] = []

MON = root / "deploy/monitoring"
RULES = MON / "xiaoer-alerts.yaml"
RULE_TESTS = MON / "xiaoer-alerts.test.yaml"
PROM_CONFIG = MON / "prometheus.yml"
DASHBOARD = MON / "grafana/xiaoer-dashboard.json"
DATASOURCES = MON / "grafana/provisioning/datasources/prometheus.yaml"
DASH_PROVIDER = MON / "grafana/provisioning/dashboards/xiaoer.yaml"
COMPOSE = root / "compose.yaml"
JOB = "xiaoer"
SEVERITIES = ("critical", "warning", "info")
# tonic::Code's Debug names: what the `code` label holds (service/src/telemetry.rs).
TONIC_CODES = {"Ok", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
               "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
               "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
               "Unauthenticated"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
# What Grafana's variables stand for when the expressions are checked.
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
                "__range_s": "3600", "__range_ms": "3600000", "__interval_ms": "60000"}
DATASOURCE_UIDS = {"${datasource}", "$datasource"}


def fail(msg: str) -> None:
    errors.append(msg)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)


def load_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        fail(f"{rel(path)} is missing")
    except yaml.YAMLError as e:
        fail(f"{rel(path)}: not valid YAML: {' '.join(str(e).split())}")
    return None


def promtool_run(*args: str, cwd: Path | None = None) -> tuple[bool, str]:
    r = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def squash(text: str, limit: int = 600) -> str:
    """promtool's output on one line: its "Checking FILE" and SUCCESS lines dropped, paths relative."""
    lines = [l for l in text.splitlines() if l.strip() and not re.match(r"^\s*(Checking |SUCCESS)", l)]
    text = " ".join(" ".join(lines or text.splitlines()).split()).replace(f"{root}/", "")
    return text if len(text) <= limit else text[:limit] + " …"


def promtool_check(what: str, path: Path, summary: bool = False) -> bool:
    """`promtool check WHAT PATH`: a problem if it fails, else a line in the summary
    (with promtool's last line when `summary`)."""
    ok, out = promtool_run("check", what, str(path))
    if not ok:
        fail(f"{rel(path)}: `promtool check {what}` failed: {squash(out)}")
    else:
        last = f" ({' '.join(out.splitlines()[-1].split())})" if summary else ""
        done.append(f"{rel(path)}: promtool check {what}{last}")
    return ok


# --- What the server exports -------------------------------------------------------
MACRO = re.compile(r"\b(counter|gauge|histogram)!\s*\(")
CONST = re.compile(r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"(xiaoer_[a-z0-9_]+)\"")


def macro_args(text: str, start: int) -> str:
    """The argument text of a macro call whose '(' is at text[start - 1]."""
    depth, i, in_str = 1, start, False
    while i < len(text) and depth:
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return text[start:i - 1]


def split_top(args: str) -> list[str]:
    parts, depth, cur, in_str, esc = [], 0, "", False, False
    for c in args:
        if in_str:
            cur += c
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


exported: dict[str, dict] = {}  # name -> {"kind", "labels" (None = not known from the source), "where"}
rpc_names: set[str] = set()
sources = []
for sub in ("service/src", "cli/src"):
    for rs in sorted((root / sub).rglob("*.rs")):
        relp = rs.relative_to(root).as_posix()
        if rs.name == "tests.rs" or "/tests/" in relp:
            continue  # unit tests: a name there is not exported by the server
        sources.append((relp, rs.read_text()))
consts = {}
for relp, text in sources:
    for m in CONST.finditer(text):
        consts[m.group(1)] = m.group(2)
for relp, text in sources:
    rpc_names.update(re.findall(r'"((?:AutoReply|Handoffs|KnowledgeBase)/[A-Z][A-Za-z]+)"', text))
    for m in MACRO.finditer(text):
        args = split_top(macro_args(text, m.end()))
        if not args:
            continue
        first = args[0]
        if re.fullmatch(r'"xiaoer_[a-z0-9_]+"', first):
            name = first.strip('"')
        elif first in consts:
            name = consts[first]
        else:
            continue
        labels: set[str] | None = set()
        for a in args[1:]:
            lm = re.match(r'^"([a-zA-Z_][a-zA-Z0-9_]*)"\s*=>', a)
            if lm:
                labels.add(lm.group(1))
            else:
                labels = None  # labels from a variable: not known here
                break
        line = text.count("\n", 0, m.start()) + 1
        entry = exported.setdefault(name, {"kind": m.group(1), "labels": set(), "where": f"{relp}:{line}"})
        if entry["kind"] != m.group(1):
            fail(f"{relp}:{line}: {name} is a {m.group(1)} here but a {entry['kind']} at {entry['where']}")
        if entry["labels"] is not None:
            entry["labels"] = None if labels is None else entry["labels"] | labels
if not exported:
    fail("found no counter!/gauge!/histogram!(\"xiaoer_…\") call in service/src or cli/src")
histograms = {n for n, e in exported.items() if e["kind"] == "histogram"}
done.append(f"{len(exported)} metrics exported by the source")

# --- PromQL: metric names and labels -------------------------------------------------
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\')')
SELECTOR = re.compile(r'\b(xiaoer_[a-z0-9_]+)\s*(\{[^}]*\})?')
GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)')


def base_metric(name: str) -> tuple[str | None, str]:
    """The exported metric behind a series name, and a problem if there is one."""
    if name in exported:
        if name in histograms:
            return None, (f"uses {name}, a histogram, by its bare name; Prometheus stores it as "
                          f"{name}_bucket, {name}_sum and {name}_count")
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)], ""
    near = sorted(n for n in exported if n.split("_")[:2] == name.split("_")[:2])
    hint = f" (similar: {', '.join(near)})" if near else ""
    return None, (f"uses {name}, which the server does not export: no counter!/gauge!/histogram!(\"{name}\") "
                  f"in service/src or cli/src{hint}")


def check_expr(expr: str, where: str) -> set[str]:
    """Checks one PromQL expression's metric names and labels; returns the names."""
    names = set()
    # Strings blanked in place (same length), so positions in `bare` match `expr`.
    bare = STRING.sub(lambda s: s.group(0)[0] + " " * (len(s.group(0)) - 2) + s.group(0)[-1], expr)
    metric_labels: list[set[str] | None] = []
    has_bucket = False
    # Selectors with their matchers (the matchers keep their strings).
    for m in SELECTOR.finditer(expr):
        # Skip a match inside a string (a label value that looks like a metric).
        if bare[m.start():m.start() + len(m.group(1))] != m.group(1):
            continue
        name = m.group(1)
        names.add(name)
        base, problem = base_metric(name)
        if problem:
            fail(f"{where}: {problem}")
            continue
        has_bucket |= name.endswith("_bucket")
        labels = exported[base]["labels"]
        allowed = None if labels is None else labels | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        metric_labels.append(allowed)
        for lm in MATCHER.finditer(m.group(2) or ""):
            label, op, value = lm.group(1), lm.group(2), lm.group(3)[1:-1]
            if label == "__name__":
                continue
            if allowed is not None and label not in allowed:
                fail(f"{where}: {name} has no label {label!r} (the source sets {', '.join(sorted(labels)) or 'none'})")
            if op in ("=", "!=") and value:
                if label == "code" and value not in TONIC_CODES:
                    fail(f"{where}: code={value!r} is not a tonic code name as the server writes it "
                         f"(Ok, InvalidArgument, ResourceExhausted, Unavailable, ...)")
                if label == "rpc" and rpc_names and value not in rpc_names:
                    fail(f"{where}: rpc={value!r} is not an RPC the server names (e.g. \"AutoReply/Reply\")")
    # by (...) / without (...) / on (...): labels some metric of the expression has.
    if metric_labels and all(a is not None for a in metric_labels):
        union = set().union(*metric_labels)
        for g in GROUPING.finditer(bare):
            for label in [x.strip() for x in g.group(2).split(",") if x.strip()]:
                if label not in union:
                    fail(f"{where}: {g.group(1)} ({label}): no metric of the expression has the label {label!r} "
                         f"(they have {', '.join(sorted(union))})")
    # A xiaoer_ name that is not followed by a selector (e.g. inside a function) was found above;
    # anything else matching xiaoer_ in the bare text is a name too.
    for n in re.findall(r"\bxiaoer_[a-z0-9_]+", bare):
        if n not in names:
            names.add(n)
            _, problem = base_metric(n)
            if problem:
                fail(f"{where}: {problem}")
    return names


def heading_anchors(md: Path) -> set[str]:
    anchors, counts = set(), {}
    in_code = False
    for line in md.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


# --- Alert rules ---------------------------------------------------------------------
rule_names: set[str] = set()
nalerts = 0
rules_doc = load_yaml(RULES)
if rules_doc is not None:
    rules_ok = promtool_check("rules", RULES, summary=True)
    if not rules_ok:
        pass  # the unit tests would only repeat the parse error
    elif RULE_TESTS.exists():
        ok, out = promtool_run("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
        if not ok:
            fail(f"{rel(RULE_TESTS)}: `promtool test rules` failed: {squash(out, 1500)}")
        else:
            ntests = len((load_yaml(RULE_TESTS) or {}).get("tests") or [])
            done.append(f"{ntests} rule unit tests pass (promtool test rules)")
    else:
        fail(f"{rel(RULE_TESTS)} is missing: the alert rules need their unit tests")
    groups = (rules_doc or {}).get("groups") if isinstance(rules_doc, dict) else None
    if not groups:
        fail(f"{rel(RULES)}: no rule groups")
    for g in groups or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record") or "?"
            where = f"{rel(RULES)}: {'alert' if 'alert' in r else 'rule'} {name}"
            rule_names.update(check_expr(str(r.get("expr", "")), where))
            if "alert" not in r:
                continue
            nalerts += 1
            sev = (r.get("labels") or {}).get("severity")
            if sev not in SEVERITIES:
                fail(f"{where}: needs a severity label ({', '.join(SEVERITIES)}), found {sev!r}")
            ann = r.get("annotations") or {}
            for key in ("summary", "description", "runbook"):
                if not str(ann.get(key, "")).strip():
                    fail(f"{where}: needs a {key} annotation")
            runbook = str(ann.get("runbook", "")).strip()
            if runbook:
                path, _, anchor = runbook.partition("#")
                doc = root / path
                if not path.endswith(".md") or not anchor:
                    fail(f"{where}: runbook {runbook!r} must be docs/FILE.md#anchor")
                elif not doc.is_file():
                    fail(f"{where}: runbook {runbook!r}: {path} does not exist")
                elif anchor not in heading_anchors(doc):
                    fail(f"{where}: runbook {runbook!r}: {path} has no heading with the anchor #{anchor}")
    done.append(f"{nalerts} alerts with severity, summary, description and a runbook that resolves")

# --- Prometheus configuration ----------------------------------------------------------
prom = load_yaml(PROM_CONFIG)
if prom is not None:
    promtool_check("config", PROM_CONFIG)

# --- compose.yaml: targets and mounts -------------------------------------------------
compose = load_yaml(COMPOSE) or {}
services = compose.get("services") or {}


def env_of(svc: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    ef = svc.get("env_file") or []
    for f in [ef] if isinstance(ef, str) else ef:
        f = f if isinstance(f, str) else f.get("path")
        p = root / f
        if p.exists():
            for line in p.read_text().splitlines():
                m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
                if m:
                    out[m.group(1)] = m.group(2).strip("'\"")
    envs = svc.get("environment") or {}
    if isinstance(envs, list):
        envs = dict(e.split("=", 1) for e in envs if "=" in e)
    out.update({k: str(v) for k, v in envs.items()})
    return out


def dockerfile_env(key: str) -> str | None:
    df = root / "Dockerfile"
    if not df.exists():
        return None
    joined = re.sub(r"\\\n", " ", df.read_text())
    m = re.search(rf"^\s*ENV\s.*\b{key}=(\S+)", joined, re.M)
    return m.group(1) if m else None


def mounts(svc: dict) -> list[tuple[str, str]]:
    """(source relative to the project, target) of each bind mount."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append((v.get("source", ""), v.get("target", "")))
            continue
        parts = str(v).split(":")
        if len(parts) >= 2 and parts[0].startswith((".", "/")):
            out.append((parts[0], parts[1]))
    return out


def source_path(src: str) -> Path:
    return (root / src).resolve() if not src.startswith("/") else Path(src)


replicas = {n: s for n, s in services.items() if s.get("build") or "xiaoer" in str(s.get("image", ""))}
expected = set()
for n, s in replicas.items():
    addr = env_of(s).get("XIAOER_METRICS_ADDR") or dockerfile_env("XIAOER_METRICS_ADDR") or "127.0.0.1:9464"
    expected.add(f"{n}:{addr.rsplit(':', 1)[-1]}")
if isinstance(prom, dict):
    jobs = [j for j in prom.get("scrape_configs") or [] if j.get("job_name") == JOB]
    if not jobs:
        fail(f"{rel(PROM_CONFIG)}: no scrape job named {JOB!r} (the alert rules match job=\"{JOB}\")")
    targets = {t for j in jobs for sc in j.get("static_configs") or [] for t in sc.get("targets") or []}
    if jobs and targets != expected:
        missing, extra = sorted(expected - targets), sorted(targets - expected)
        fail(f"{rel(PROM_CONFIG)}: job {JOB!r} must scrape compose.yaml's replicas {', '.join(sorted(expected)) or '(none)'}"
             + (f"; missing {', '.join(missing)}" if missing else "") + (f"; not a replica: {', '.join(extra)}" if extra else ""))
    elif jobs:
        done.append(f"job {JOB!r} scrapes compose's {len(expected)} replicas")

mounted: dict[Path, list[tuple[str, str]]] = {}  # source file -> [(service, target)]
for n, s in services.items():
    for src, target in mounts(s):
        p = source_path(src)
        if src.startswith("./deploy/monitoring") or src.startswith("deploy/monitoring"):
            if not p.exists():
                fail(f"compose.yaml ({n}): mounts {src}, which does not exist")
        mounted.setdefault(p, []).append((n, target))


def mount_of(path: Path, what: str) -> tuple[str, str] | None:
    found = mounted.get(path.resolve())
    if not found:
        fail(f"compose.yaml: no service mounts {rel(path)} ({what})")
        return None
    return found[0]


prom_mount = mount_of(PROM_CONFIG, "Prometheus's configuration") if PROM_CONFIG.exists() else None
if prom_mount and isinstance(prom, dict):
    svc_name, target = prom_mount
    for rf in prom.get("rule_files") or []:
        want_target = posixpath.normpath(posixpath.join(posixpath.dirname(target), rf))
        want_src = (PROM_CONFIG.parent / rf).resolve()
        if (svc_name, want_target) not in mounted.get(want_src, []):
            fail(f"compose.yaml ({svc_name}): prometheus.yml loads {rf}, so {rel(want_src)} must be mounted at {want_target}")
    cmd = " ".join(map(str, services[svc_name].get("command") or []))
    m = re.search(r"--config\.file[= ](\S+)", cmd)
    if m and m.group(1) != target:
        fail(f"compose.yaml ({svc_name}): --config.file={m.group(1)}, but prometheus.yml is mounted at {target}")
prom_service = prom_mount[0] if prom_mount else None

ds = load_yaml(DATASOURCES) if DATASOURCES.exists() else None
if ds is None and not DATASOURCES.exists():
    fail(f"{rel(DATASOURCES)} is missing")
provisioned_uids = set()
if isinstance(ds, dict):
    for d in ds.get("datasources") or []:
        if d.get("type") == "prometheus":
            provisioned_uids.add(str(d.get("uid")))
            host = re.sub(r"^https?://", "", str(d.get("url", ""))).split(":")[0].split("/")[0]
            if prom_service and host != prom_service:
                fail(f"{rel(DATASOURCES)}: datasource {d.get('name')} points at {d.get('url')}, not the {prom_service} service")
    if not provisioned_uids:
        fail(f"{rel(DATASOURCES)}: no prometheus datasource")
    m = mount_of(DATASOURCES, "Grafana's datasource")
    if m and not m[1].startswith("/etc/grafana/provisioning/datasources/"):
        fail(f"compose.yaml ({m[0]}): {rel(DATASOURCES)} must be mounted under /etc/grafana/provisioning/datasources/")

provider = load_yaml(DASH_PROVIDER) if DASH_PROVIDER.exists() else None
if provider is None and not DASH_PROVIDER.exists():
    fail(f"{rel(DASH_PROVIDER)} is missing")
if isinstance(provider, dict):
    m = mount_of(DASH_PROVIDER, "Grafana's dashboard provider")
    if m and not m[1].startswith("/etc/grafana/provisioning/dashboards/"):
        fail(f"compose.yaml ({m[0]}): {rel(DASH_PROVIDER)} must be mounted under /etc/grafana/provisioning/dashboards/")
    paths = [((p.get("options") or {}).get("path") or "").rstrip("/") for p in provider.get("providers") or []]
    dm = mount_of(DASHBOARD, "the dashboard") if DASHBOARD.exists() else None
    if dm and posixpath.dirname(dm[1]) not in paths and dm[1].rstrip("/") not in paths:
        fail(f"compose.yaml ({dm[0]}): the dashboard is mounted at {dm[1]}, outside the provider's folder "
             f"({', '.join(paths) or 'none'}) in {rel(DASH_PROVIDER)}")
    if dm:
        home = env_of(services[dm[0]]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        if home and home != dm[1]:
            fail(f"compose.yaml ({dm[0]}): GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH is {home}, but the dashboard is mounted at {dm[1]}")
done.append("compose mounts for Prometheus and Grafana")

# --- Grafana dashboard -----------------------------------------------------------------
dash_names: set[str] = set()
npanels = nexprs = 0
try:
    dash = json.loads(DASHBOARD.read_text())
except FileNotFoundError:
    fail(f"{rel(DASHBOARD)} is missing")
    dash = None
except json.JSONDecodeError as e:
    fail(f"{rel(DASHBOARD)}: not valid JSON: {e}")
    dash = None
exprs: list[tuple[str, str]] = []  # (where, expr with Grafana variables replaced)
if isinstance(dash, dict):
    dvars = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    ds_var = next((n for n, v in dvars.items() if v.get("type") == "datasource" and v.get("query") == "prometheus"), None)
    allowed_uids = provisioned_uids | ({f"${{{ds_var}}}", f"${ds_var}"} if ds_var else set())
    if not ds_var:
        fail(f"{rel(DASHBOARD)}: needs a datasource variable of type prometheus (templating), so it imports into any Grafana")
    if not isinstance(dash.get("schemaVersion"), int):
        fail(f"{rel(DASHBOARD)}: schemaVersion missing")
    for key in ("uid", "title"):
        if not str(dash.get(key, "")).strip():
            fail(f"{rel(DASHBOARD)}: needs a {key}")
    flat = []
    for p in dash.get("panels") or []:
        flat.append(p)
        flat += p.get("panels") or []  # panels of a collapsed row
    ids: dict = {}
    for i, p in enumerate(flat):
        if p.get("type") == "row":
            if not str(p.get("title", "")).strip():
                fail(f"{rel(DASHBOARD)}: row {i + 1} has no title")
            continue
        npanels += 1
        title = str(p.get("title", "")).strip()
        label = f"panel {p.get('id', i + 1)} {title!r}" if title else f"panel {p.get('id', i + 1)} (#{i + 1})"
        where = f"{rel(DASHBOARD)}: {label}"
        if not title:
            fail(f"{where}: has no title")
        if not str(p.get("description", "")).strip():
            fail(f"{where}: has no description (say in plain words what it shows)")
        if p.get("id") in ids:
            fail(f"{where}: id {p.get('id')} is also panel {ids[p.get('id')]!r}'s")
        ids[p.get("id")] = title
        if "gridPos" not in p:
            fail(f"{where}: has no gridPos")
        pds = (p.get("datasource") or {}).get("uid") if isinstance(p.get("datasource"), dict) else p.get("datasource")
        if pds is not None and pds not in allowed_uids and pds != "-- Mixed --":
            fail(f"{where}: datasource {pds!r} is neither the dashboard's datasource variable nor a provisioned uid")
        targets = [t for t in p.get("targets") or [] if not t.get("hide")]
        if not targets:
            fail(f"{where}: has no targets (a panel needs at least one query)")
        for t in targets:
            tw = f"{where} target {t.get('refId', '?')}"
            expr = str(t.get("expr", "")).strip()
            if not expr:
                fail(f"{tw}: has no PromQL expression (expr)")
                continue
            tds = t.get("datasource")
            tds = tds.get("uid") if isinstance(tds, dict) else tds
            if tds is not None and tds not in allowed_uids:
                fail(f"{tw}: datasource {tds!r} is neither the dashboard's datasource variable nor a provisioned uid")
            nexprs += 1
            dash_names.update(check_expr(expr, tw))
            sub = re.sub(r"\$\{?(\w+)\}?", lambda m: GRAFANA_VARS.get(m.group(1), m.group(0)), expr)
            left = re.findall(r"\$\{?\w+\}?", STRING.sub('""', sub))
            if left:
                fail(f"{tw}: uses {', '.join(sorted(set(left)))}, which is no Grafana built-in this check knows "
                     f"({', '.join('$' + k for k in GRAFANA_VARS)}) and no dashboard variable")
                continue
            exprs.append((tw, sub))

# Every dashboard expression through promtool: recording rules of a scratch file.
def exprs_ok(batch: list[tuple[str, str]]) -> tuple[bool, str]:
    doc = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr_{i}", "expr": e}
                                                      for i, (_, e) in enumerate(batch)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(doc, f)
    try:
        return promtool_run("check", "rules", f.name)
    finally:
        os.unlink(f.name)


if exprs:
    ok, _ = exprs_ok(exprs)
    if not ok:
        for where, e in exprs:
            ok1, out = exprs_ok([(where, e)])
            if not ok1:
                msg = re.sub(r"^.*?(\d+:\d+: parse error|parse error|bad)", r"\1", squash(out, 400))
                fail(f"{where}: not valid PromQL: {msg}")
    else:
        done.append(f"{rel(DASHBOARD)}: {npanels} panels with titles and targets, {nexprs} expressions valid PromQL")

used = rule_names | dash_names
if used:
    done.append(f"{len(used)} metric names used in the rules and the dashboard, all exported" if not any(
        "does not export" in e for e in errors) else f"{len(used)} metric names used")

if errors:
    for e in errors:
        print(f"check-monitoring: {e}", file=sys.stderr)
    print(f"check-monitoring: FAILED with {len(errors)} problem(s)", file=sys.stderr)
    sys.exit(1)
print("check-monitoring: OK: " + "; ".join(done))
PY
