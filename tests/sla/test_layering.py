"""`sla` knows nothing of the ticket apps: they register with it, never the other way round."""

import ast
from pathlib import Path

SLA = Path(__file__).resolve().parents[2] / "sla"
TICKET_APPS = {"incidents", "requests_app", "problems", "monitoring"}


def test_no_sla_module_imports_a_ticket_app():
    found = []
    for module in SLA.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{module.relative_to(SLA)}: {n}" for n in names if n.split(".")[0] in TICKET_APPS]
    assert list(SLA.rglob("*.py")) and found == []
