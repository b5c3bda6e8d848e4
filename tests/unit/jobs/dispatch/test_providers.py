"""The factory builds one client per deployment with the deployment's settings.

The real client modules are written elsewhere; here stand-ins are put where the factory imports
them from, and record what they were given.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from pydantic import SecretStr

from chatstream.settings import REPO_ROOT
from jobs.dispatch.config import load_routing
from jobs.dispatch.providers import build_providers
from tests.unit.jobs.dispatch.fakes import routing


class Recorded:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.kind = kwargs.get("kind", "simulated")


@pytest.fixture
def client_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in (("simulated", "SimulatedProvider"), ("openai_compat", "OpenAIProvider")):
        stand_in = types.ModuleType(f"connectors.providers.{module}")
        setattr(stand_in, name, type(name, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, f"connectors.providers.{module}", stand_in)


@pytest.mark.usefixtures("client_modules")
def test_each_deployment_gets_a_client_with_its_settings() -> None:
    config = routing(
        {
            "sim": {"simulated": {"ttft_ms": 40, "tokens_per_s": 300, "seed": 7}},
            "gpt": {"provider": "openai", "base_url": "https://api.example/v1", "continuation": "instruct"},
            "vllm": {"provider": "openai", "kind": "vllm", "base_url": "http://127.0.0.1:8000/v1"},
        }
    )
    gpt = config.deployments["gpt"].model_copy(update={"api_key": SecretStr("sk-1")})
    config = config.model_copy(update={"deployments": {**config.deployments, "gpt": gpt}})
    providers: dict[str, Any] = build_providers(config)
    assert type(providers["sim"]).__name__ == "SimulatedProvider"
    assert providers["sim"].kwargs == {
        "ttft_ms": 40, "tokens_per_s": 300, "answer_tokens": None, "fail_after_tokens": None,
        "failure_rate": 0.0, "failure": "server_error", "retry_after_s": None, "seed": 7,
    }  # fmt: skip
    assert providers["gpt"].kwargs == {
        "base_url": "https://api.example/v1", "api_key": "sk-1", "kind": "openai", "continuation": "instruct",
    }  # fmt: skip
    assert providers["vllm"].kwargs["api_key"] is None and providers["vllm"].kind == "vllm"


@pytest.mark.usefixtures("client_modules")
def test_the_shipped_config_builds_only_simulated_clients() -> None:
    config = load_routing(REPO_ROOT / "pipelines" / "models.toml", {})
    providers = build_providers(config)
    assert set(providers) == set(config.deployments)
    assert {type(p).__name__ for p in providers.values()} == {"SimulatedProvider"}
