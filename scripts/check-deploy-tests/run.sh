#!/usr/bin/env bash
# Self-tests of scripts/check-deploy.sh: it must pass on this tree, and fail
# with a message naming the problem on copies of it broken one way each.
#   scripts/check-deploy-tests/run.sh      prints one line per case, exits non-zero if any case misbehaves
# Each case copies a skeleton of the working tree into a throwaway git
# repository under /tmp (every tracked and new file by name; only the files
# the checker reads with their content, the rest empty), applies one change,
# runs the checker on the copy with --root and expects a non-zero exit and the
# given text. Cases run $XIAOER_CHECK_JOBS (default 2) at a time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# run_case, case_, replace and the summary, shared with the other checker's self-tests.
# shellcheck source-path=SCRIPTDIR source=../lib/broken-copies.sh
. "$repo/scripts/lib/broken-copies.sh"
broken_copies_start check-deploy 150

# The pristine skeleton, made once; every case starts from a copy of it.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) | python3 -c '
import os, re, shutil, sys
src, dst = sys.argv[1:3]
content = re.compile(r"^(Cargo\.toml|\.gitignore|\.dockerignore|Dockerfile|compose\.yaml)$"
                     r"|^deploy/|^knowledge-base/(shop\.toml$|kustomization\.yaml$|articles/)|^(service|cli)/src/")
for path in sys.stdin.read().split("\0"):
    if not path or not os.path.lexists(os.path.join(src, path)):
        continue
    out = os.path.join(dst, path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if content.search(path):
        shutil.copy2(os.path.join(src, path), out)
    else:
        open(out, "w").close()
' "$repo" "$pristine"
# A scratch repository of the copy, only so that `git ls-files` answers there;
# --intent-to-add records the names without storing any content.
git -C "$pristine" init -q
git -C "$pristine" add --intent-to-add .

base=deploy/kubernetes/base
overlay=deploy/kubernetes/overlays/postgres

# 0. The unchanged copy passes.
unchanged_case 120

# Schemas.
case_ "unknown field in a manifest" "imagePullPolicyy" \
  "replace $base/deployment.yaml 'args: [\"serve\"]' 'args: [\"serve\"]
          imagePullPolicyy: IfNotPresent'"
case_ "wrong type in a manifest" "terminationGracePeriodSeconds: 'sixty' is not of type 'integer'" \
  "replace $base/deployment.yaml 'terminationGracePeriodSeconds: 60' 'terminationGracePeriodSeconds: sixty'"
case_ "unknown apiVersion" "Couldn't find schema for kind HorizontalPodAutoscaler with api version autoscaling/v9" \
  "replace $base/hpa.yaml 'apiVersion: autoscaling/v2' 'apiVersion: autoscaling/v9'"
# Kustomization references.
case_ "resource file missing" "resource missing.yaml does not exist" \
  "replace $base/kustomization.yaml '  - pdb.yaml' '  - pdb.yaml
  - missing.yaml'"
case_ "secretGenerator env file missing" "env file postgres-secret.env does not exist" \
  "replace $overlay/kustomization.yaml '- postgres.env' '- postgres-secret.env'"
case_ "generator file outside the kustomization" "env file ../overlays/postgres/postgres.env is outside deploy/kubernetes/base" \
  "replace $base/kustomization.yaml '- settings.env' '- ../overlays/postgres/postgres.env'"
case_ "manifest in no kustomization" "netpol.yaml: referenced by no kustomization.yaml" \
  "cp $overlay/postgres-service.yaml $base/netpol.yaml"
# Knowledge base (knowledge-base/kustomization.yaml, included by the base).
case_ "new article missing from the generator" \
  "knowledge-base/articles/new-article.md is missing from the ConfigMap generator xiaoer-knowledge-base, so Kubernetes would not serve it: add the line \`      - articles/new-article.md\` to knowledge-base/kustomization.yaml after line" \
  "cp knowledge-base/articles/restock.md knowledge-base/articles/new-article.md"
shop_line=$(grep -n -m1 -- '- shop.toml' "$repo/knowledge-base/kustomization.yaml" | cut -d: -f1)
case_ "new article sorting first, missing from the generator" \
  "add the line \`      - articles/aaa.md\` to knowledge-base/kustomization.yaml after line $shop_line (\`- shop.toml\`)" \
  "cp knowledge-base/articles/restock.md knowledge-base/articles/aaa.md"
case_ "generator takes an article from a copy" \
  "takes cod.md from knowledge-base/cod.md, a copy: list knowledge-base/articles/cod.md itself" \
  "cp knowledge-base/articles/cod.md knowledge-base/cod.md && replace knowledge-base/kustomization.yaml '- articles/cod.md' '- cod.md'"
case_ "knowledge base copied back into the base" \
  "takes return-policy.md from deploy/kubernetes/base/knowledge-base/return-policy.md, a copy" \
  "replace $base/kustomization.yaml '  - ../../../knowledge-base
' '' && mkdir $base/knowledge-base && cp knowledge-base/shop.toml knowledge-base/articles/*.md $base/knowledge-base/ &&
   { printf '  - name: xiaoer-knowledge-base\n    options:\n      disableNameSuffixHash: true\n    files:\n'
     for f in $base/knowledge-base/*; do echo \"      - knowledge-base/\${f##*/}\"; done; } >> $base/kustomization.yaml"
case_ "knowledge base not included by the base" \
  "generates xiaoer-knowledge-base, but deploy/kubernetes/base/kustomization.yaml does not include it" \
  "replace $base/kustomization.yaml '  - ../../../knowledge-base
' ''"
case_ "article deleted but still in the generator" "holds cod.md, which is not in knowledge-base/ (shop.toml or articles/*.md): remove the line \`- articles/cod.md\`" \
  "rm knowledge-base/articles/cod.md"
case_ "knowledge base ConfigMap with a hashed name" "needs options.disableNameSuffixHash: true" \
  "replace knowledge-base/kustomization.yaml 'disableNameSuffixHash: true' 'disableNameSuffixHash: false'"
case_ "knowledge base over the size kubectl can apply" "over 200 KiB: client-side \`kubectl apply\`" \
  "python3 -c 'print(150000 * \"x\")' >> knowledge-base/articles/warranty.md"
# Issue #24's rules.
case_ "replicas under an HPA" "sets spec.replicas although a HorizontalPodAutoscaler scales it" \
  "replace $base/deployment.yaml '  revisionHistoryLimit: 5' '  replicas: 3
  revisionHistoryLimit: 5'"
case_ "image tag latest" "is not pinned to a tag other than latest" \
  "replace $base/kustomization.yaml 'newTag: 0.1.0' 'newTag: latest'"
case_ "grace period shorter than preStop + drain + in-flight" "= 45 s exceeds terminationGracePeriodSeconds 40" \
  "replace $base/deployment.yaml 'terminationGracePeriodSeconds: 60' 'terminationGracePeriodSeconds: 40'"
case_ "drain window grown past the grace period" "drain window 40 s" \
  "replace $base/settings.env 'XIAOER_DRAIN_WINDOW=10s' 'XIAOER_DRAIN_WINDOW=40s'"
case_ "liveness probe on /readyz" "livenessProbe must be an httpGet on /livez" \
  "replace $base/deployment.yaml 'path: /livez' 'path: /readyz'"
case_ "writable root filesystem" "readOnlyRootFilesystem must be true" \
  "replace $base/deployment.yaml 'readOnlyRootFilesystem: true' 'readOnlyRootFilesystem: false'"
case_ "capabilities kept" "capabilities.drop must include ALL" \
  "replace $overlay/postgres-statefulset.yaml 'drop: [\"ALL\"]' 'drop: [\"NET_RAW\"]'"
case_ "no PodDisruptionBudget" "no PodDisruptionBudget selects its pods" \
  "replace $base/kustomization.yaml '  - pdb.yaml
' '' && rm $base/pdb.yaml"
case_ "gRPC port without appProtocol" "needs appProtocol: grpc" \
  "replace $base/service.yaml 'appProtocol: grpc' 'appProtocol: http'"
case_ "tokens in the settings ConfigMap" "XIAOER_TOKENS must not be in a ConfigMap" \
  "echo 'XIAOER_TOKENS=a:admin:sha256\$00\$00' >> $base/settings.env"
case_ "retention set twice" "XIAOER_RETENTION_DAYS must be set exactly once" \
  "echo 'XIAOER_RETENTION_DAYS=30' >> $overlay/xiaoer-db.env"
case_ "misspelt variable" "sets XIAOER_RETENTON_DAYS, which no code reads" \
  "replace $base/settings.env 'XIAOER_RETENTION_DAYS=180' 'XIAOER_RETENTON_DAYS=180'"
case_ "overlay URL and database password disagree" "differs from POSTGRES_PASSWORD in postgres.env" \
  "replace $overlay/postgres.env 'POSTGRES_PASSWORD=xiaoer-demo-password' 'POSTGRES_PASSWORD=changed'"
# compose.yaml.
case_ "compose file invalid" "compose.yaml: \`" \
  "replace compose.yaml 'condition: service_healthy' 'condition: service_happy'"
case_ "compose port open beyond loopback" "must be published on 127.0.0.1 only" \
  "replace compose.yaml '\"127.0.0.1:50052:50051\"' '\"50052:50051\"'"
case_ "compose stop grace too short for the drain" "stop_grace_period 10s is shorter" \
  "replace compose.yaml 'stop_grace_period: 45s' 'stop_grace_period: 10s'"
case_ "compose demo tokens malformed" "XIAOER_TOKENS must be name:role:sha256" \
  "replace deploy/compose/demo.env 'demo-admin:admin:' 'demo-admin:root:'"
# Dockerfile and .dockerignore.
case_ "failure hidden with || true" "hides failures" \
  "replace Dockerfile 'cargo build --release --locked --bin xiaoer' 'cargo build --release --locked --bin xiaoer || true'"
case_ "build without --locked" "must use --locked" \
  "replace Dockerfile 'cargo build --release --locked' 'cargo build --release'"
case_ ".dockerignore drops source the build needs" ".dockerignore leaves out service/src/console/" \
  "echo 'service/src/console' >> .dockerignore"
case_ ".dockerignore lets local state in" ".dockerignore lets fuzz/" \
  "echo '!fuzz' >> .dockerignore"
# Rendering (only where kubectl or kustomize is installed).
if command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1; then
  case_ "overlay no longer creates a Secret the Deployment reads" "reads Secret xiaoer-tokens, which it does not create" \
    "replace $overlay/kustomization.yaml '- name: xiaoer-tokens' '- name: xiaoer-token'"
else
  echo "skip  rendering case (no kubectl or kustomize on this machine)"
fi

broken_copies_finish
