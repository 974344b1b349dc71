"""The deployment kit's observability files: deploy/prometheus/rules.yml (checked and unit-tested
by promtool), deploy/grafana/ringgate.json, and that every metric name (and label value) the
rules and the dashboard use is exposed by a running server: a single host, and a cluster-mode
host on a real redis-server (where the ringgate_upstream_* families exist).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import rgtest
from clustertest import cluster  # noqa: F401  (fixture)
from rgtest import REPO

RULES = REPO / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "ringgate.json"

# Labels Prometheus attaches from the scrape target, not from /metrics.
TARGET_LABELS = {"job", "instance"}

static_only = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                 reason="a static file check, independent of the I/O backend: runs in the io_uring pass only")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian package prometheus)")
    return path


# ----------------------------------------------------------------------------- PromQL names

_GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE_RE = re.compile(r"\[[^\]]*\]")
_TOKEN_RE = re.compile(r'(?<![0-9.a-zA-Z_:$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\})?\s*(\()?')
_MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The metric selectors of a PromQL expression: (name, [(label, op, value)]). Anything that
    is neither a function, a keyword nor a grouping label counts as a metric name, so a typo of
    any of them shows up as an unknown name."""
    text = _RANGE_RE.sub("", _GROUPING_RE.sub("", expr))
    out = []
    for m in _TOKEN_RE.finditer(text):
        name, matchers, call = m.group(1), m.group(2), m.group(3)
        if call or name.lower() in _KEYWORDS:
            continue
        out.append((name, _MATCHER_RE.findall(matchers or "")))
    return out


def load_rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in dashboard_panels(dash) for t in p.get("targets", [])]


_LABEL_VALUES_RE = re.compile(r"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$")


def references() -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """(where, name, matchers) for every selector in the rules' and the dashboard's queries,
    the dashboard's variable queries, and every metric an annotation names."""
    refs = []
    for r in load_rules():
        where = f"rules.yml {r.get('alert') or r.get('record')}"
        refs += [(where, n, ms) for n, ms in selectors(r["expr"])]
        for key, text in (r.get("annotations") or {}).items():
            # names in templates (query "ringgate_slots{...}") and in the prose
            for n in re.findall(r"\bringgate[_:][a-zA-Z0-9_:]*[a-zA-Z0-9_]", text):
                refs.append((f"{where} annotation {key}", n, []))
    dash = json.loads(DASHBOARD.read_text())
    for p in dashboard_panels(dash):
        for t in p.get("targets", []):
            refs += [(f"ringgate.json panel {p['title']!r}", n, ms) for n, ms in selectors(t["expr"])]
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = _LABEL_VALUES_RE.match(q.strip())
            assert m, f"dashboard variable {v['name']}: not a label_values(metric, label) query: {q!r}"
            refs.append((f"ringgate.json variable {v['name']}", m.group(1), [(m.group(2), "has", "")]))
    return refs


def check_exposed(scrapes: list[rgtest.Metrics], annotation_families: bool = True) -> list[str]:
    """Problems: names referenced but exposed by none of `scrapes`, and label values a query
    matches on that no exposed sample of that metric carries."""
    samples = [s for m in scrapes for s in m.samples]
    exposed = {n for n, _, _ in samples}
    rules = load_rules()
    recorded = {r["record"]: [n for n, _ in selectors(r["expr"])] for r in rules if "record" in r}
    problems = []

    def label_values(name: str, label: str) -> set[str]:
        sources = recorded.get(name, [name])
        vals = set()
        for src in sources:
            vals |= {ls[label] for n, ls, _ in samples if n in recorded.get(src, [src]) and label in ls}
        return vals

    for where, name, matchers in references():
        if name in recorded:
            pass
        elif name.startswith("ringgate:"):
            problems.append(f"{where}: {name} looks like a recording rule, but rules.yml records no such name")
            continue
        elif not name.startswith("ringgate_"):
            problems.append(f"{where}: {name!r} is not a ringgate metric (a misspelt function or keyword?)")
            continue
        elif name not in exposed:
            family = "annotation" in where and f"{name}_bucket" in exposed
            if not family:
                problems.append(f"{where}: {name} is not in /metrics")
                continue
        for label, op, value in matchers:
            if label in TARGET_LABELS or op in ("!=", "!~"):
                continue
            have = label_values(name, label)
            if op == "has":
                if not have:
                    problems.append(f"{where}: no sample of {name} has the label {label!r}")
                continue
            if not re.fullmatch(r"[A-Za-z0-9_.+]+(\|[A-Za-z0-9_.+]+)*", value):
                continue      # a real regex: not checkable against values
            for alt in value.split("|"):
                if alt not in have:
                    problems.append(f"{where}: {name}{{{label}{op}\"{value}\"}}: no sample has {label}=\"{alt}\" "
                                    f"(exposed: {sorted(have)})")
    return problems


# ----------------------------------------------------------------------------- static checks

@static_only
def test_rules_pass_promtool_check():
    r = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"promtool check rules failed:\n{r.stdout}\n{r.stderr}"
    m = re.search(r"SUCCESS: (\d+) rules found", r.stdout)
    assert m and int(m.group(1)) == len(load_rules()), r.stdout


@static_only
def test_rules_unit_tests_pass():
    r = subprocess.run([promtool(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True,
                       timeout=60, cwd=RULES_TEST.parent)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, f"promtool test rules failed:\n{r.stdout}\n{r.stderr}"


@static_only
def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = {r["alert"]: r for r in load_rules() if "alert" in r}
    tests = yaml.safe_load(RULES_TEST.read_text())
    firing, quiet = set(), set()
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            exp = case.get("exp_alerts") or []
            (firing if exp else quiet).add(case["alertname"])
            for a in exp:
                assert a.get("exp_annotations"), f"{case['alertname']}: a firing case without its annotations"
        # a case that fires for h1 with other hosts in the input shows those stay quiet, but
        # every alert also has an evaluation where nothing fires
    assert sorted(set(alerts) - firing) == [], "alerts no unit test sees firing"
    assert sorted(set(alerts) - quiet) == [], "alerts no unit test checks as not firing"
    assert sorted((firing | quiet) - set(alerts)) == [], "unit tests of alerts rules.yml does not define"
    for name, r in alerts.items():
        sev = (r.get("labels") or {}).get("severity")
        assert sev in ("critical", "warning", "info"), f"{name}: severity {sev!r}"
        ann = r.get("annotations") or {}
        assert ann.get("summary") and ann.get("description"), f"{name}: needs summary and description"


@static_only
def test_dashboard_model():
    dash = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    assert dash["__inputs"][0]["pluginId"] == "prometheus"
    panels = dashboard_panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    titles = " | ".join(p["title"] for p in panels).lower()
    for topic in ("connections by transport", "deliveries", "publishes", "resets", "disconnects",
                  "restarts", "retention", "upstream up", "upstream lag", "send buffers", "exhaustion"):
        assert topic in titles, f"no panel about {topic!r}: {titles}"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert "instance" in variables and variables["instance"]["multi"]
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{p['title']}: gridPos {g}"
        assert p["targets"], f"{p['title']}: no query"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
            # every selector follows the instance variable
            for name, ms in selectors(t["expr"]):
                assert ("instance", "=~", "$instance") in ms, f"{p['title']}: {name} ignores $instance: {t['expr']}"


# ----------------------------------------------------------------------------- against running servers

def epoll_scrape(gateway) -> rgtest.Metrics:
    """`ringgate_io_backend` carries only the running backend's label: a host on `--io epoll`
    shows the value RinggateIOBackendEpoll matches on, whichever backend this pass runs."""
    gw = gateway("--io", "epoll", workers=1, name="epoll")
    m = gw.metrics()
    assert m.get("ringgate_io_backend", backend="epoll") == 1, m.text
    return m


def test_names_used_are_exposed_by_a_single_host(gateway):
    gw = gateway()
    gw.publish("obs", "x")
    m = gw.metrics()
    # the cluster-only families are really absent here (the cluster test below covers them)
    assert not any(n.startswith("ringgate_upstream_") for n in m.names())
    problems = [p for p in check_exposed([m, epoll_scrape(gateway)])
                if "ringgate_upstream_" not in p and 'reason="gap"' not in p]
    assert problems == [], "\n".join(problems)


def test_names_used_are_exposed_by_a_cluster_host(cluster, gateway):
    c = cluster(hosts=1, haproxy=False)
    h = c.hosts[0]
    h.publish("obs", "x")
    m = h.metrics()
    assert m.get("ringgate_upstream_up") == 1, m.text
    problems = check_exposed([m, epoll_scrape(gateway)])
    assert problems == [], "\n".join(problems)
