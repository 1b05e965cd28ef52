"""The alert rules pass promtool (syntax, and unit tests in which each alert fires); the dashboard is what
scripts/gen_dashboard.py writes; both use only documented metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

from tests.observability.conftest import REPO, RULES, documented_families
from tests.observability.prometheus import binaries

RULE_TESTS = RULES.with_name("fleet-alerts.test.yml")
DASHBOARD = REPO / "deploy" / "grafana" / "inference-fleet.json"
METRIC = re.compile(r"\b((?:fleet|grpc)_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b")
LABELS = {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}


def test_promtool_checks_the_rules() -> None:
    promtool = binaries()[1]
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout.strip())


def test_promtool_unit_tests_fire_every_alert() -> None:
    promtool = binaries()[1]
    out = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired = {case["alertname"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert alerts == fired, f"alerts without a firing test: {sorted(alerts - fired)}"


def _expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])] + rules


def test_dashboard_and_rules_use_only_documented_metrics() -> None:
    documented = set(documented_families())
    used = {m.group(1) for expr in _expressions() for m in METRIC.finditer(expr)} - LABELS
    assert used and used <= documented, sorted(used - documented)


def test_dashboard_is_generated_and_well_formed() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'scripts'); import gen_dashboard; "
                          "sys.stdout.write(gen_dashboard.render())"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=True)
    assert DASHBOARD.read_text(encoding="utf-8") == out.stdout, "run: python scripts/gen_dashboard.py"
    board = json.loads(out.stdout)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "model_id", "instance"}
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
    titles = {p["title"] for p in board["panels"]}
    assert {"Fleet overview", "Per model", "Per worker"} <= titles
