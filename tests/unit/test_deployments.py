"""prefect.yaml: every deployment points at a real flow, and every flow is deployed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load_flow(entrypoint: str) -> object:
    path, name = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_deployments_resolve_to_flows() -> None:
    from prefect import Flow

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = config["deployments"]
    assert deployments, "prefect.yaml declares no deployment"
    for dep in deployments:
        flow = load_flow(dep["entrypoint"])
        assert isinstance(flow, Flow), dep["entrypoint"]
        assert dep["work_pool"]["name"] == "cryptolake"
    deployed = {dep["entrypoint"].split(":")[0] for dep in deployments}
    flow_files = {f"flows/{p.name}" for p in (REPO / "flows").glob("*.py")}
    # every flow module except the demo (run by `make demo`, not on a schedule) is deployed
    assert flow_files - {"flows/__init__.py", "flows/demo.py"} <= deployed
