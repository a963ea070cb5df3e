#!/usr/bin/python3
"""Checks the rendered deploy/ kustomizations against what docs/deployment.md promises.

  manifests_check.py --root REPO [--server XLSTM_SERVER] NAME=RENDERED.yaml ...

NAME is the kustomization's directory under deploy/ (overlays/cpu, overlays/gpu, ...). Every
failed check is printed; the exit status is 1 when any failed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def flag(args, name):
    """The value of --name=VALUE in a container's args, or None."""
    for arg in args:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def by_kind(objects):
    kinds = {}
    for o in objects:
        kinds.setdefault(o["kind"], []).append(o)
    return kinds


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_server_args(server, where, args):
    """xlstm-server's option table must accept every argument: with the model swapped for an
    empty directory and the ports for free ones, the server must get past flag parsing and fail
    on the missing config.json (exit 1), never on a flag (exit 2). --backend cuda in a build or
    on a machine without CUDA fails on the backend instead, also after parsing (exit 1)."""
    with tempfile.TemporaryDirectory() as empty:
        swapped = {"model": empty, "host": "127.0.0.1", "port": "0", "metrics-port": "0",
                   "metrics-host": "127.0.0.1"}
        run = []
        for arg in args:
            name = arg[2:].split("=", 1)[0]
            run.append(f"--{name}={swapped[name]}" if name in swapped else arg)
        p = subprocess.run([server] + run, capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and ("config.json" in p.stderr or "--backend cuda" in p.stderr),
              f"{where}: xlstm-server {' '.join(run)} exited {p.returncode}, expected 1 "
              f"(missing config.json): {p.stderr.strip()[-400:]}")


def check_workload(name, objects, adapter_metrics, server, dockerfile):
    kinds = by_kind(objects)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "PodMonitor",
                 "HorizontalPodAutoscaler"):
        check(len(kinds.get(kind, [])) == 1, f"{name}: expected one {kind}, got "
              f"{len(kinds.get(kind, []))}")
    if failures:
        return
    dep = kinds["Deployment"][0]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    check(matches(dep["spec"]["selector"]["matchLabels"], labels),
          f"{name}: the Deployment's selector does not match its pods")
    spec = pod["spec"]
    (c,) = spec["containers"]
    args = c["args"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports == {"grpc": 50051, "metrics": 50052}, f"{name}: container ports {ports}")
    # The server binds /metrics to loopback unless told otherwise; the PodMonitor scrapes the pod.
    check(flag(args, "metrics-host") == "0.0.0.0",
          f"{name}: --metrics-host=0.0.0.0 is missing, so Prometheus cannot scrape the pod: {args}")
    check(flag(args, "port") == "50051" and flag(args, "metrics-port") == "50052",
          f"{name}: --port/--metrics-port do not match the container ports: {args}")
    check(flag(args, "host") == "0.0.0.0", f"{name}: the server must listen on 0.0.0.0: {args}")
    check(flag(args, "model") == "/models", f"{name}: --model is not /models: {args}")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    check("/models" in mounts and mounts["/models"].get("readOnly"),
          f"{name}: /models is not mounted read-only")

    # Probes: native gRPC on the serving port; the startup probe covers a slow 7B load.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe, {})
        check(p.get("grpc", {}).get("port") == 50051, f"{name}: {probe} is not gRPC on 50051")
    startup = c["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    check(budget >= 600, f"{name}: the startup probe allows {budget}s, below 600s")
    check(c["readinessProbe"]["grpc"].get("service") == "xlstm.v1.Inference",
          f"{name}: readiness does not ask for xlstm.v1.Inference")

    # Termination: preStop delay + drain grace + flushing fit in the grace period.
    drain = float(flag(args, "drain-grace-seconds") or 30)
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop_s = float(pre_stop[1]) if pre_stop[0] == "sleep" else 0
    grace = spec["terminationGracePeriodSeconds"]
    check(grace >= pre_stop_s + drain + 10,
          f"{name}: terminationGracePeriodSeconds {grace} < preStop {pre_stop_s}s + drain "
          f"{drain}s + 10s")

    # Security: the image's user (Dockerfile USER) and a read-only root file system.
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    sc = spec["securityContext"]
    check(sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot is not set")
    check(user and str(sc.get("runAsUser")) == user.group(1),
          f"{name}: runAsUser {sc.get('runAsUser')} is not the Dockerfile's USER")
    check(c["securityContext"].get("readOnlyRootFilesystem") is True,
          f"{name}: the root file system is writable")
    exposed = re.search(r"^EXPOSE (.*)$", dockerfile, re.M)
    check(exposed and exposed.group(1).split() == ["50051", "50052"],
          f"{name}: the Dockerfile exposes {exposed and exposed.group(1)}, not 50051 50052")

    res = c["resources"]
    check("cpu" in res.get("requests", {}) and "memory" in res.get("requests", {}),
          f"{name}: cpu and memory requests missing: {res}")
    check("memory" in res.get("limits", {}), f"{name}: no memory limit: {res}")
    gpu = res.get("limits", {}).get("nvidia.com/gpu")
    image_tag = c["image"].rsplit(":", 1)[-1]
    if name.endswith("gpu"):
        check(gpu == 1 and res["requests"].get("nvidia.com/gpu") == 1,
              f"{name}: does not request one nvidia.com/gpu: {res}")
        check(flag(args, "backend") == "cuda", f"{name}: --backend is not cuda: {args}")
        check(image_tag == "cuda", f"{name}: image {c['image']} is not the CUDA variant")
        check(any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations", [])),
              f"{name}: no toleration for nvidia.com/gpu taints")
    else:
        check(gpu is None, f"{name}: a CPU overlay requests a GPU")
        check(flag(args, "backend") == "cpu", f"{name}: --backend is not cpu: {args}")
        check(image_tag == "cpu", f"{name}: image {c['image']} is not the CPU variant")
    if server:
        check_server_args(server, name, args)

    # gRPC Service: headless, so that clients (or a mesh) balance per call.
    svc = kinds["Service"][0]
    check(svc["spec"].get("clusterIP") == "None", f"{name}: the Service is not headless")
    check(matches(svc["spec"]["selector"], labels), f"{name}: the Service selects no pod")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(svc_ports.get("grpc", {}).get("port") == 50051 and
          svc_ports["grpc"].get("targetPort") == "grpc", f"{name}: Service grpc port: {svc_ports}")

    pdb = kinds["PodDisruptionBudget"][0]
    check(matches(pdb["spec"]["selector"]["matchLabels"], labels),
          f"{name}: the PodDisruptionBudget selects no pod")
    check("maxUnavailable" in pdb["spec"], f"{name}: the PDB should bound maxUnavailable")

    pm = kinds["PodMonitor"][0]
    check(matches(pm["spec"]["selector"]["matchLabels"], labels),
          f"{name}: the PodMonitor selects no pod")
    check([e["port"] for e in pm["spec"]["podMetricsEndpoints"]] == ["metrics"],
          f"{name}: the PodMonitor does not scrape the metrics port")

    hpa = kinds["HorizontalPodAutoscaler"][0]
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"],
          f"{name}: the HPA scales {ref}, not the Deployment")
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    check(names, f"{name}: the HPA has no per-pod metric")
    for n in names:
        check(n in adapter_metrics, f"{name}: HPA metric {n} is not defined by prometheus-adapter "
              f"(it defines {sorted(adapter_metrics)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--server")
    ap.add_argument("rendered", nargs="+")
    a = ap.parse_args()
    docs = {}
    for item in a.rendered:
        name, path = item.split("=", 1)
        with open(path) as f:
            docs[name] = [d for d in yaml.safe_load_all(f) if d]
    with open(os.path.join(a.root, "Dockerfile")) as f:
        dockerfile = f.read()

    adapter = docs.get("prometheus-adapter", [])
    check(len(adapter) == 1 and adapter[0]["kind"] == "ConfigMap",
          "prometheus-adapter: expected one ConfigMap")
    adapter_metrics = set()
    if adapter:
        rules = yaml.safe_load(adapter[0]["data"]["config.yaml"])["rules"]
        adapter_metrics = {r["name"]["as"] for r in rules}
    for name in ("overlays/cpu", "overlays/gpu"):
        if check(name in docs, f"{name}: not rendered"):
            check_workload(name, docs[name], adapter_metrics, a.server, dockerfile)
    pool = by_kind(docs.get("inference-extension", [])).get("InferencePool", [])
    if check(len(pool) == 1, "inference-extension: expected one InferencePool") and \
            "overlays/cpu" in docs:
        (dep,) = by_kind(docs["overlays/cpu"])["Deployment"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        check(matches(pool[0]["spec"]["selector"]["matchLabels"], labels),
              "inference-extension: the InferencePool selects no xlstm-serve pod")
        check([p["number"] for p in pool[0]["spec"]["targetPorts"]] == [50051],
              "inference-extension: the InferencePool does not target the gRPC port")
    for message in failures:
        print("deploy_manifests: FAIL:", message, file=sys.stderr)
    if not failures:
        print(f"deploy_manifests: checks passed for {', '.join(sorted(docs))}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
