#!/usr/bin/env python3
"""The Grafana dashboard of pci-mesh-guard, built with grafanalib.

    scripts/dashboard.py            writes envoy-config/grafana/dashboard.json
    scripts/dashboard.py --check    fails if that file is not what this script writes
    scripts/dashboard.py --queries  prints every query of the file, one JSON object per line

Run it with the test tools' Python (scripts/test-tools.sh prints its path), which has grafanalib.
The queries filter on the `namespace` and `pod` labels, as the alert rules do.
"""

import json
import sys
from pathlib import Path

from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Table,
    Template,
    Templating,
    Target,
    TimeSeries,
)
from grafanalib._gen import DashboardEncoder

OUT = Path(__file__).resolve().parent.parent / "envoy-config" / "grafana" / "dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'namespace=~"$namespace", pod=~"$pod"'


def sel(extra=""):
    """The label matchers of every query: the chosen namespaces and pods, then `extra`."""
    return "{" + SEL + (", " + extra if extra else "") + "}"


def target(expr, legend="", instant=False, ref="A"):
    return Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        instant=instant,
        datasource=DATASOURCE,
    )


def series(title, description, targets, x, y, w=12, h=8, unit="reqps", stack=False):
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=GridPos(h=h, w=w, x=x, y=y),
        unit=unit,
        fillOpacity=10,
        stacking={"mode": "normal", "group": "A"} if stack else {},
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
    )


def stat(title, description, expr, x, y, w=6, h=4, thresholds=None):
    return Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, instant=True)],
        gridPos=GridPos(h=h, w=w, x=x, y=y),
        reduceCalc="lastNotNull",
        thresholds=thresholds or [
            {"color": "green", "value": None},
            {"color": "red", "value": 1},
        ],
    )


def row(title, y):
    return RowPanel(title=title, gridPos=GridPos(h=1, w=24, x=0, y=y))


# Denials per caller within the dashboard's range. A caller's counter is born with its first
# denial, so `increase` would miss that one: the value at the start of the range is taken as 0
# for a counter that did not exist then.
DENIED_BY_CALLER = (
    "topk(10, sum by (caller, reason) ("
    f"pci_mesh_guard_denied_callers_total{sel()}"
    f" - (pci_mesh_guard_denied_callers_total{sel()} offset $__range"
    f" or 0 * pci_mesh_guard_denied_callers_total{sel()})"
    ")) > 0"
)


def dashboard():
    panels = [
        row("Decisions (PCI DSS 7, 4.2.1)", 0),
        stat(
            "Plaintext or weak TLS refused",
            "Requests refused for no_mtls or weak_tls in the dashboard's time range.",
            "sum(increase(pci_mesh_guard_requests_total"
            + sel('decision="deny", reason=~"no_mtls|weak_tls"')
            + "[$__range]))",
            0, 1,
        ),
        stat(
            "Would-be denials under dry_run",
            "Requests dry_run let through that enforcement would have denied.",
            "sum(increase(pci_mesh_guard_requests_total"
            + sel('decision="deny", dry_run="true"')
            + "[$__range]))",
            6, 1,
        ),
        stat(
            "Denied share",
            "Denied requests among all requests in the time range.",
            "sum(increase(pci_mesh_guard_requests_total" + sel('decision="deny"') + "[$__range]))"
            " / clamp_min(sum(increase(pci_mesh_guard_requests_total" + sel() + "[$__range])), 1)",
            12, 1,
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": 0.05},
                {"color": "red", "value": 0.2},
            ],
        ),
        stat(
            "Sidecars reporting",
            "Sidecars whose plugin reports its metrics now.",
            "count(count by (namespace, pod) (pci_mesh_guard_configurations_total" + sel() + "))",
            18, 1,
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        series(
            "Requests by decision and reason",
            "Enforced decisions per second, by decision and reason.",
            [
                target(
                    "sum by (decision, reason) (rate(pci_mesh_guard_requests_total"
                    + sel('dry_run="false"')
                    + "[$__rate_interval]))",
                    "{{decision}} {{reason}}",
                ),
                target(
                    "sum by (reason) (rate(pci_mesh_guard_requests_total"
                    + sel('dry_run="true"')
                    + "[$__rate_interval]))",
                    "would deny (dry_run) {{reason}}",
                    ref="B",
                ),
            ],
            0, 5, stack=True,
        ),
        Table(
            title="Top denied callers",
            description=(
                "The callers denied most in the time range, by SPIFFE ID and reason. "
                "'unauthenticated': no identity (plaintext, weak TLS, an untrusted certificate); "
                "'other': beyond the 100 callers each sidecar names."
            ),
            dataSource=DATASOURCE,
            targets=[Target(
                expr=DENIED_BY_CALLER, refId="A", instant=True, format="table",
                datasource=DATASOURCE,
            )],
            gridPos=GridPos(h=8, w=12, x=12, y=5),
            transformations=[{
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value": "denials"},
                },
            }],
            sortBy=[],
        ),
        row("Card numbers (PCI DSS 3.4.1)", 13),
        series(
            "Card numbers by direction and outcome",
            "redacted: masked; granted: let through by a pan grant; dry_run: let through "
            "unmasked by dry_run, a would-be leak.",
            [target(
                "sum by (direction, outcome) (rate(pci_mesh_guard_pans_total"
                + sel() + "[$__rate_interval]))",
                "{{direction}} {{outcome}}",
            )],
            0, 14, unit="short",
        ),
        series(
            "Unscannable bodies",
            "Compressed bodies: refused, or passed unscanned as compressed_body says.",
            [target(
                "sum by (direction) (rate(pci_mesh_guard_unscannable_bodies_total"
                + sel() + "[$__rate_interval]))",
                "{{direction}}",
            )],
            12, 14, unit="short",
        ),
        row("Audit pipeline (PCI DSS 10.2, 10.7.2)", 22),
        series(
            "Audit events by outcome",
            "emitted: to the log or Envoy's access log; sent: accepted by the OTLP collector; "
            "dropped: lost (see the audit_failure events).",
            [target(
                "sum by (outcome) (rate(pci_mesh_guard_audit_events_total"
                + sel() + "[$__rate_interval]))",
                "{{outcome}}",
            )],
            0, 23, w=8, unit="short",
        ),
        series(
            "Collector delivery errors",
            "Failed deliveries to the OTLP collector, per second.",
            [target(
                "sum by (pod) (rate(pci_mesh_guard_audit_sink_errors_total"
                + sel() + "[$__rate_interval]))",
                "{{pod}}",
            )],
            8, 23, w=8, unit="short",
        ),
        series(
            "Audit queue depth",
            "Events waiting in the otlp_http sink's queue.",
            [target(
                "max by (pod) (pci_mesh_guard_audit_queue_depth" + sel() + ")",
                "{{pod}}",
            )],
            16, 23, w=8, unit="short",
        ),
        row("Configuration and the VM", 31),
        series(
            "Configurations accepted and rejected",
            "Configurations the plugin was given, per VM.",
            [target(
                "sum by (result) (increase(pci_mesh_guard_configurations_total"
                + sel() + "[$__rate_interval]))",
                "{{result}}",
            )],
            0, 32, unit="short",
        ),
        series(
            "Policy linter findings",
            "Findings of the policy linter on the configuration in force.",
            [target(
                "max by (pod) (pci_mesh_guard_lint_findings" + sel() + ")",
                "{{pod}}",
            )],
            12, 32, w=6, unit="short",
        ),
        series(
            "VM memory",
            "The plugin VM's linear memory per sidecar. It only grows; a steady rise under "
            "steady traffic is a leak.",
            [target(
                "max by (pod) (pci_mesh_guard_vm_memory_bytes" + sel() + ")",
                "{{pod}}",
            )],
            18, 32, w=6, unit="bytes",
        ),
    ]
    variables = [
        Template(
            name="datasource", label="Prometheus", query="prometheus", type="datasource",
        ),
        Template(
            name="namespace", label="Namespace", dataSource=DATASOURCE,
            query="label_values(pci_mesh_guard_configurations_total, namespace)",
            includeAll=True, multi=True, default="$__all", allValue=".*",
        ),
        Template(
            name="pod", label="Pod", dataSource=DATASOURCE,
            query='label_values(pci_mesh_guard_configurations_total{namespace=~"$namespace"}, pod)',
            includeAll=True, multi=True, default="$__all", allValue=".*",
        ),
    ]
    return Dashboard(
        title="pci-mesh-guard",
        uid="pci-mesh-guard",
        description="Decisions, card numbers and the audit pipeline of pci-mesh-guard.",
        tags=["pci-mesh-guard", "pci-dss", "envoy"],
        timezone="utc",
        refresh="30s",
        schemaVersion=36,
        panels=panels,
        templating=Templating(list=variables),
    ).auto_panel_ids()


def render():
    return json.dumps(
        dashboard().to_json_data(), sort_keys=True, indent=2, cls=DashboardEncoder
    ) + "\n"


def queries(text):
    """Every query in a dashboard's JSON: panel targets, then template variables."""
    board = json.loads(text)
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            yield {"panel": panel["title"], "expr": t["expr"], "instant": t.get("instant", False)}
    for var in board["templating"]["list"]:
        if var.get("type") == "query":
            yield {"variable": var["name"], "expr": var["query"]}


def main(args):
    if args == ["--check"]:
        if not OUT.exists() or OUT.read_text() != render():
            sys.exit(f"{OUT} is not what scripts/dashboard.py writes: run it and commit the result")
        print(f"{OUT}: up to date")
    elif args == ["--queries"]:
        for q in queries(OUT.read_text()):
            print(json.dumps(q))
    elif not args:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(render())
        print(f"wrote {OUT}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
