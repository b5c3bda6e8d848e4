"""The routing file: what loads, and the one line each mistake gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatstream.settings import REPO_ROOT
from jobs.dispatch.config import load_routing
from jobs.dispatch.errors import RoutingConfigError

MINIMAL = """
[aliases.chat]
deployments = ["sim"]
[deployments.sim]
provider = "simulated"
model = "simulated-1"
"""

OPENAI = """
[aliases.chat]
deployments = ["gpt"]
[deployments.gpt]
provider = "openai"
model = "gpt-4o-mini"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_the_shipped_file_loads_with_no_keys_and_is_all_simulated() -> None:
    config = load_routing(REPO_ROOT / "pipelines" / "models.toml", {})
    assert set(config.aliases) == {"chatstream-sim", "chatstream-sim-fast"}
    assert config.aliases["chatstream-sim"].strategy == "weighted"
    assert config.aliases["chatstream-sim-fast"].strategy == "lowest_latency"
    for name, deployment in config.deployments.items():
        assert deployment.provider == "simulated" and "simulated" in name and "simulated" in deployment.model
        assert 30 <= deployment.simulation.ttft_ms <= 60 and 150 <= deployment.simulation.tokens_per_s <= 300


def test_names_come_from_the_table_keys_and_defaults_apply(tmp_path: Path) -> None:
    config = load_routing(write(tmp_path, MINIMAL), {})
    assert config.aliases["chat"].name == "chat" and config.deployments["sim"].name == "sim"
    assert config.deployments["sim"].weight == 1.0 and config.resilience.max_retries == 2
    assert config.chunks.max_tokens == 16 and not config.cache.enabled
    assert config.deployments["sim"].provider_kind == "simulated"


def test_kind_labels_an_openai_compatible_server_in_events(tmp_path: Path) -> None:
    text = OPENAI.replace('api_key_env = "OPENAI_API_KEY"', 'kind = "vllm"')
    assert load_routing(write(tmp_path, text), {}).deployments["gpt"].provider_kind == "vllm"


def test_a_tenant_table_overrides_only_what_it_names(tmp_path: Path) -> None:
    text = MINIMAL + "[tenants.default]\nrpm = 600\ntpm = 1000\n[tenants.acme]\nrpm = 60\n"
    config = load_routing(write(tmp_path, text), {})
    assert (config.tenant_limits("acme").rpm, config.tenant_limits("acme").tpm) == (60, 1000)
    assert (config.tenant_limits("other").rpm, config.tenant_limits("other").tpm) == (600, 1000)


def test_the_api_key_comes_from_the_environment(tmp_path: Path) -> None:
    config = load_routing(write(tmp_path, OPENAI), {"OPENAI_API_KEY": "sk-test"})
    key = config.deployments["gpt"].api_key
    assert key is not None and key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(config)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (MINIMAL.replace('["sim"]', '["sim", "nope"]'), {}, "aliases.chat.deployments: unknown deployment 'nope'"),
        (MINIMAL + '[aliases.b]\ndeployments = ["sim"]\nfallbacks = ["c"]\n'
                   '[aliases.c]\ndeployments = ["sim"]\nfallbacks = ["b"]\n', {},
         "aliases: fallback cycle b -> c -> b"),  # fmt: skip
        (MINIMAL.replace('["sim"]\n', '["sim"]\nfallbacks = ["chat"]\n'), {}, "an alias cannot fall back to itself"),
        (MINIMAL + '[aliases.b]\ndeployments = ["sim"]\nfallbacks = ["gone"]\n', {},
         "aliases.b.fallbacks: unknown alias 'gone'"),
        (OPENAI, {}, "deployments.gpt.api_key_env: environment variable OPENAI_API_KEY is not set"),
        (OPENAI, {"OPENAI_API_KEY": ""}, "environment variable OPENAI_API_KEY is not set"),
        (OPENAI.replace('api_key_env = "OPENAI_API_KEY"', 'api_key = "sk-x"'), {},
         "deployments.gpt.api_key: keys are not read from the file"),
        (OPENAI.replace('base_url = "https://api.openai.com/v1"\n', ""), {"OPENAI_API_KEY": "k"},
         "deployments.gpt: base_url is required for provider = 'openai'"),
        (MINIMAL + 'base_url = "http://x"\n', {}, "deployments.sim: base_url is only for provider = 'openai'"),
        (MINIMAL + "weight = 0\n", {}, "deployments.sim.weight: Input should be greater than 0 (got 0)"),
        (MINIMAL + "wieght = 2\n", {}, "deployments.sim.wieght: Extra inputs are not permitted"),
        (MINIMAL.replace('provider = "simulated"', 'provider = "anthropic"'), {},
         "deployments.sim.provider: Input should be 'simulated' or 'openai'"),
        ('[deployments.sim]\nprovider = "simulated"\nmodel = "m"\n', {}, "aliases: Field required"),
        ('[aliases]\n[deployments.sim]\nprovider = "simulated"\nmodel = "m"\n', {},
         "aliases: Dictionary should have at least 1 item"),
        (MINIMAL.replace("[aliases.chat]", '[aliases.""]'), {}, 'aliases."": String should have at least 1 character'),
        (MINIMAL.replace('["sim"]', "[]"), {}, "aliases.chat.deployments: Tuple should have at least 1 item"),
        (MINIMAL.replace('deployments = ["sim"]', 'deployments = ["sim"]\nstrategy = "fastest"'), {},
         "aliases.chat.strategy: Input should be 'weighted', 'lowest_latency' or 'lowest_cost'"),
        ("[aliases.chat\n", {}, "not valid TOML"),
        ('deployments = 3\n[aliases.chat]\ndeployments = ["sim"]\n', {}, "deployments: Input should be a valid dictionary"),
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(path, environ)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match=r"models.toml: cannot read the routing file: No such file"):
        load_routing(tmp_path / "models.toml", {})
