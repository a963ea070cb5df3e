#!/usr/bin/python3
"""Every PromQL expression of the dashboard, the alert rules and the prometheus-adapter rules
returns data from a real Prometheus scraping a real xlstm-server under load.

  monitoring_test.py --root REPO --server xlstm-server --loadgen xlstm-loadgen \
      --client xlstm-client --model MODEL_DIR

Starts xlstm-server (free ports, 2 slots, a queue of 2) and Debian's prometheus on 127.0.0.1
(a free port, a temporary storage directory, 1 s scrape and rule intervals, the rules file
loaded), drives the server with xlstm-loadgen plus a few requests that fail on purpose
(invalid, past their deadline), then queries Prometheus's HTTP API:
  - each dashboard target (Grafana variables: $instance -> .*, $__rate_interval -> 30s) and the
    instance variable's label_values query must return at least one series, and histogram
    quantiles a finite value;
  - each alert rule's expression must evaluate, and with its comparisons made `bool` (so the
    series are kept whatever the threshold) return data; Prometheus must have loaded every rule
    and evaluated it without error; `promtool check rules` must pass;
  - each prometheus-adapter rule's seriesQuery must match series, and its metricsQuery (its
    template filled in as the adapter would for one pod) must return data.
Exit 77 (ctest: skipped) when prometheus or promtool is missing.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

NAMESPACE, POD = "xlstm-test", "xlstm-0"
failures = []


def fail(message):
    failures.append(message)
    print("monitoring_test: FAIL:", message, file=sys.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}; its output:\n"
                               + (open(log).read()[-3000:] if log else ""))
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not within {timeout}s" +
                       (f"; output:\n{open(log).read()[-3000:]}" if log else ""))


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params, doseq=True)
                                  if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        try:
            return self.get("/api/v1/query", query=expr)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{e}: {e.read().decode(errors='replace')}") from None


def finite_values(data):
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    return [float(s["value"][1]) for s in data["result"]
            if math.isfinite(float(s["value"][1]))]


def with_bool(expr):
    """Adds `bool` to every comparison outside label matchers and strings, so that a rule's
    expression keeps its series (0 or 1) instead of filtering them by the threshold."""
    out, i, depth, quote = [], 0, 0, None
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c == "{":
            depth += 1
            out.append(c)
        elif c == "}":
            depth -= 1
            out.append(c)
        elif depth == 0 and (m := re.match(r"(==|!=|>=|<=|>|<)(\s*bool\b)?", expr[i:])):
            out.append(m.group(1) + " bool")
            i += len(m.group(0))
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def check_expr(prom, where, expr, quantile_expected):
    try:
        data = prom.query(expr)
    except RuntimeError as e:
        return fail(f"{where}: {expr}: {e}")
    if not data["result"]:
        return fail(f"{where}: no data for {expr}")
    if quantile_expected and not finite_values(data):
        return fail(f"{where}: only NaN for {expr}: {data['result']}")
    print(f"monitoring_test: ok  {where}: {len(data['result'])} series")


def main():
    ap = argparse.ArgumentParser()
    for name in ("root", "server", "loadgen", "client", "model"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print(f"monitoring_test: SKIP: {tool} not found (Debian package prometheus)")
            return 77
    a.root = os.path.abspath(a.root)
    rules_path = os.path.join(a.root, "deploy/prometheus/rules.yaml")
    dashboard_path = os.path.join(a.root, "deploy/grafana/xlstm-serve.json")
    adapter_path = os.path.join(a.root, "deploy/prometheus-adapter/config.yaml")

    p = subprocess.run(["promtool", "check", "rules", rules_path], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"promtool check rules: {p.stdout}{p.stderr}")
    else:
        print("monitoring_test: promtool check rules:", p.stdout.strip().splitlines()[-1].strip())

    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="xlstm-monitoring-")
    procs = []

    def stop_all(*_):
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        server_log = os.path.join(tmp, "server.log")
        server = subprocess.Popen(
            [a.server, "--model", a.model, "--host", "127.0.0.1", "--port", "0",
             "--metrics-port", "0", "--num-slots", "2", "--max-queue", "2",
             "--stats-interval-seconds", "0"],
            stdout=open(server_log, "w"), stderr=subprocess.STDOUT)
        procs.append(server)
        ready = wait_for("xlstm-server ready", lambda: re.search(
            r"ready grpc_port=(\d+) metrics_port=(\d+)", open(server_log).read()), 60, server,
            server_log)
        grpc_port, metrics_port = ready.group(1), ready.group(2)

        prom_port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules_path],
            "scrape_configs": [{
                "job_name": "xlstm-serve",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"],
                                    # What the PodMonitor's relabelling gives in a cluster.
                                    "labels": {"namespace": NAMESPACE, "pod": POD}}],
            }],
        }
        config_path = os.path.join(tmp, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        prom_log = os.path.join(tmp, "prometheus.log")
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=open(prom_log, "w"), stderr=subprocess.STDOUT)
        procs.append(prometheus)
        prom = Prometheus(prom_port)

        def prom_up():
            try:
                r = prom.query('up{job="xlstm-serve"} == 1')["result"]
                return bool(r)
            except (OSError, RuntimeError):
                return False
        wait_for("prometheus scraping the server", prom_up, 60, prometheus, prom_log)
        print(f"monitoring_test: server :{grpc_port} (metrics :{metrics_port}), "
              f"prometheus :{prom_port}, up after {time.monotonic() - start:.1f}s")

        # Load: 4 closed-loop workers on 2 slots (2 running, 2 waiting), and requests that
        # fail on purpose or meet a full queue.
        target = f"127.0.0.1:{grpc_port}"
        loadgen = subprocess.Popen(
            [a.loadgen, "--target", target, "--concurrency", "4", "--duration-s", "12",
             "--warmup-s", "0", "--prompt-tokens", "24", "--max-new-tokens", "24",
             "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(loadgen)
        time.sleep(3)
        for extra in (["--max-new-tokens", "100000000"],          # invalid
                      ["--max-new-tokens", "64", "--deadline-ms", "1"],  # deadline
                      ["--max-new-tokens", "8"], ["--max-new-tokens", "8"]):  # may be rejected
            subprocess.run([a.client, "--target", target, "generate", "--ids", "1,2,3"] + extra,
                           capture_output=True, timeout=60)
        out, _ = loadgen.communicate(timeout=120)
        if loadgen.returncode != 0:
            raise RuntimeError(f"xlstm-loadgen exited {loadgen.returncode}:\n{out}")
        completed = re.search(r"(?m)^\s*requests\D*(\d+)", out)
        print("monitoring_test: load done" +
              (f" ({completed.group(0).strip()})" if completed else ""))
        time.sleep(2)  # the last scrapes

        # The dashboard.
        with open(dashboard_path) as f:
            dashboard = json.load(f)
        variables = {"$__rate_interval": "30s", "$instance": ".*", "${instance}": ".*"}
        exprs = 0
        for panel in dashboard["panels"]:
            for t in panel.get("targets", []):
                expr = t["expr"]
                for k, v in sorted(variables.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace(k, v)
                if "$" in expr:
                    fail(f"dashboard {panel['title']!r}: unknown variable in {t['expr']}")
                    continue
                exprs += 1
                check_expr(prom, f"dashboard {panel['title']!r} {t['refId']}", expr,
                           "histogram_quantile" in expr)
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["query"]["query"])
            if not m:
                fail(f"dashboard variable {var['name']}: unsupported query {var['query']}")
                continue
            values = prom.get(f"/api/v1/label/{m.group(2)}/values", **{"match[]": m.group(1)})
            if not values:
                fail(f"dashboard variable {var['name']}: no values for {var['query']['query']}")
            else:
                print(f"monitoring_test: ok  dashboard variable {var['name']}: {values}")

        # The alert rules, as written and with their comparisons made bool.
        with open(rules_path) as f:
            groups = yaml.safe_load(f)["groups"]
        for group in groups:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                try:
                    prom.query(rule["expr"])
                except RuntimeError as e:
                    fail(f"rule {name}: {e}")
                check_expr(prom, f"rule {name} (bool)", with_bool(rule["expr"]),
                           "histogram_quantile" in rule["expr"])
        loaded = {r["name"]: r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]}
        for group in groups:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                r = loaded.get(name)
                if r is None or r.get("health") != "ok":
                    fail(f"rule {name}: not loaded or not evaluated by Prometheus: {r}")

        # prometheus-adapter: what it would ask Prometheus for one pod.
        with open(adapter_path) as f:
            adapter = yaml.safe_load(f)["rules"]
        for rule in adapter:
            name = rule["name"]["as"]
            series = prom.get("/api/v1/series", **{"match[]": rule["seriesQuery"]})
            if not series:
                fail(f"adapter {name}: seriesQuery {rule['seriesQuery']} matches nothing")
                continue
            metric = series[0]["__name__"]
            query = (rule["metricsQuery"].replace("<<.Series>>", metric)
                     .replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",pod=~"{POD}"')
                     .replace("<<.GroupBy>>", "pod"))
            check_expr(prom, f"adapter {name}", query, False)

        print(f"monitoring_test: {exprs} dashboard queries, "
              f"{sum(len(g['rules']) for g in groups)} rules, {len(adapter)} adapter rules "
              f"in {time.monotonic() - start:.1f}s")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        fail(str(e))
    finally:
        stop_all()
    print("monitoring_test:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
