"""Checks what the payfac chart promises on one `helm template` output (called by scripts/helm-check.sh).

Usage: check_manifests.py RENDER.yaml NAME "EXTRA KINDS" SECRET-VALUES.yaml
       check_manifests.py --extract-rules RENDER.yaml   (prints the PrometheusRule groups for promtool)
Exits 1 and prints every broken promise.
"""

import sys
import tomllib

import yaml

RELEASE = "payfac"  # helm-check renders with release name "payfac": the full name is "payfac"
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    return None


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_container(owner, c, pod):
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{owner}: pod runAsNonRoot is not true")
    check(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, f"{owner}: runAsUser not a non-root uid")
    check(sc.get("readOnlyRootFilesystem") is True, f"{owner}: root filesystem not read-only")
    check(sc.get("allowPrivilegeEscalation") is False, f"{owner}: privilege escalation allowed")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{owner}: capabilities not all dropped")
    check(sc.get("privileged") is not True, f"{owner}: privileged")
    check(c.get("resources", {}).get("requests"), f"{owner}: no resource requests")
    check(pod.get("automountServiceAccountToken") is False, f"{owner}: service account token mounted")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/tmp" in mounts, f"{owner}: no writable /tmp (the root filesystem is read-only)")
    for e in c.get("env", []):
        if e["name"] in SECRET_ENV:
            check("valueFrom" in e and "secretKeyRef" in e["valueFrom"], f"{owner}: {e['name']} is not from a Secret")


SECRET_ENV = {"PAYFAC_DATABASE_URL", "PAYFAC_REDIS_URL", "PAYFAC_MASTER_KEY", "PAYFAC_BOOTSTRAP_OPERATOR_KEY"}


def main(path, name, extra, secret_values_path):
    docs = load(path)
    kinds = {d["kind"] for d in docs}
    created = name == "created-secrets"
    sandbox = name == "sandbox"

    deployments = {}
    for comp in ("api", "worker"):
        d = find(docs, "Deployment", f"{RELEASE}-{comp}")
        check(d is not None, f"Deployment {RELEASE}-{comp} missing")
        if d is None:
            continue
        deployments[comp] = d
        pod = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        check(matches(d["spec"]["selector"]["matchLabels"], labels), f"{comp}: selector does not match pod labels")
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        check("checksum/config" in ann and "checksum/secret" in ann, f"{comp}: checksum annotations missing")
        (c,) = pod["containers"]
        check(c.get("args") == [comp], f"{comp}: args {c.get('args')} are not [{comp}]")
        check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{comp}: liveness is not /healthz")
        check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{comp}: readiness is not /readyz")
        check(c["startupProbe"]["httpGet"]["path"] == "/healthz", f"{comp}: startup probe is not /healthz")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            check(c[probe]["httpGet"]["port"] == "metrics", f"{comp}: {probe} is not on the metrics port")
        check_container(f"Deployment {comp}", c, pod)
        envs = {e["name"]: e for e in c["env"]}
        for required in ("PAYFAC_DATABASE_URL", "PAYFAC_REDIS_URL", "PAYFAC_MASTER_KEY", "PAYFAC_CONFIG", "PAYFAC_LISTEN", "PAYFAC_METRICS_LISTEN"):
            check(required in envs, f"{comp}: env {required} missing")
        codepay = "PAYFAC_CODEPAY_PRIVATE_KEY_FILE" in envs
        check(codepay != sandbox, f"{comp}: CodePay key files {'present' if codepay else 'missing'} (sandbox={sandbox})")
        cm = find(docs, "ConfigMap", RELEASE)
        toml = tomllib.loads(cm["data"]["payfac.toml"]) if cm else {}
        grace = toml.get("shutdown_grace_seconds", 30)
        check(pod["terminationGracePeriodSeconds"] > grace, f"{comp}: terminationGracePeriodSeconds <= shutdown grace")
        check(all(v != "" for v in toml.values()), "payfac.toml holds an empty value")
        check(all(not isinstance(v, float) for v in toml.values()), "payfac.toml holds a float")
        check(toml.get("sandbox") is sandbox, f"payfac.toml sandbox is {toml.get('sandbox')}")

    job = find(docs, "Job", f"{RELEASE}-migrate")
    check(job is not None, "migration Job missing")
    if job:
        hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
        check(hooks == {"pre-install", "pre-upgrade"}, f"Job hooks are {hooks}")
        pod = job["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        check(c["args"] == ["migrate"], "Job does not run `payfac migrate`")
        api_image = deployments.get("api", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image")
        check(c["image"] == api_image, "Job image differs from the api image")
        check_container("Job", c, pod)
        db = next(e for e in c["env"] if e["name"] == "PAYFAC_DATABASE_URL")["valueFrom"]["secretKeyRef"]
        if created:
            # The chart's own Secret does not exist yet during pre-install: the Job must use the hook Secret.
            hs = find(docs, "Secret", f"{RELEASE}-migrate")
            check(hs is not None, "hook Secret for the migration Job missing")
            check(db["name"] == f"{RELEASE}-migrate", f"Job reads the database URL from {db['name']}")
            if hs:
                a = hs["metadata"]["annotations"]
                check(int(a["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"]),
                      "hook Secret is not created before the Job")
                check("hook-succeeded" in a["helm.sh/hook-delete-policy"], "hook Secret outlives a successful migration")

    svc = find(docs, "Service", RELEASE)
    check(svc is not None, "Service missing")
    if svc and "api" in deployments:
        api_labels = deployments["api"]["spec"]["template"]["metadata"]["labels"]
        check(matches(svc["spec"]["selector"], api_labels), "Service does not select api pods")
        if "worker" in deployments:
            wl = deployments["worker"]["spec"]["template"]["metadata"]["labels"]
            check(not matches(svc["spec"]["selector"], wl), "Service sends traffic to worker pods")

    for comp in ("api", "worker"):
        hpa = find(docs, "HorizontalPodAutoscaler", f"{RELEASE}-{comp}")
        check(hpa is not None, f"HPA {comp} missing")
        if hpa:
            check(hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-{comp}", f"HPA {comp} targets the wrong Deployment")
            check(hpa["spec"]["metrics"], f"HPA {comp} has no metrics")
            check("replicas" not in deployments.get(comp, {}).get("spec", {}), f"{comp}: replicas set while the HPA owns them")
        pdb = find(docs, "PodDisruptionBudget", f"{RELEASE}-{comp}")
        check(pdb is not None, f"PDB {comp} missing")
        if pdb and comp in deployments:
            labels = deployments[comp]["spec"]["template"]["metadata"]["labels"]
            check(matches(pdb["spec"]["selector"]["matchLabels"], labels), f"PDB {comp} selects no {comp} pod")

    for k in extra.split():
        want = {"ingress": "Ingress", "servicemonitor": "ServiceMonitor", "prometheusrule": "PrometheusRule",
                "networkpolicy": "NetworkPolicy", "secret": "Secret"}[k]
        check(want in kinds, f"{want} missing")
    sm = next((d for d in docs if d["kind"] == "ServiceMonitor"), None)
    if sm:
        services = [d for d in docs if d["kind"] == "Service"]
        sel = sm["spec"]["selector"]["matchLabels"]
        check(sum(matches(sel, s["metadata"]["labels"]) for s in services) == 2, "ServiceMonitor must select api and worker Services")
        check(all(e["port"] == "metrics" for e in sm["spec"]["endpoints"]), "ServiceMonitor must scrape the metrics port")
    for ing in (d for d in docs if d["kind"] == "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                port = p["backend"]["service"]["port"]
                check(port.get("name") == "http", f"Ingress routes port {port}, not only `http` (metrics must stay private)")
    dash = find(docs, "ConfigMap", f"{RELEASE}-dashboard")
    if dash:
        import json
        board = json.loads(dash["data"]["payfac.json"])
        check(len(board.get("panels", [])) >= 8, "dashboard has fewer than 8 panels")

    if created:
        sec = find(docs, "Secret", RELEASE)
        with open(secret_values_path, encoding="utf-8") as f:
            given = yaml.safe_load(f)["secrets"]
        keys = {v["key"] for v in yaml.safe_load(open(f"{sys.path[0]}/../values.yaml", encoding="utf-8"))["secrets"].values()
                if isinstance(v, dict)}
        check(sec is not None and set(sec["data"]) == keys, f"chart Secret keys {sec and set(sec['data'])} != {keys}")
        # No secret value appears in clear anywhere in the render (only base64 inside Secrets).
        text = open(path, encoding="utf-8").read()
        for entry, v in given.items():
            if isinstance(v, dict) and v.get("value"):
                for line in v["value"].splitlines():
                    if "-----" not in line and line:
                        check(line not in text, f"the value of {entry} appears in clear in the render")

    if errors:
        print(f"{name}: " + f"\n{name}: ".join(errors))
        return 1
    return 0


def extract_rules(path):
    rule = next(d for d in load(path) if d["kind"] == "PrometheusRule")
    yaml.safe_dump({"groups": rule["spec"]["groups"]}, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--extract-rules":
        sys.exit(extract_rules(sys.argv[2]))
    sys.exit(main(*sys.argv[1:5]))
