"""The provider clients of a routing config: one per deployment, built once at start.

The client classes are imported when first needed (``connectors.providers.simulated`` only for
simulated deployments, ``connectors.providers.openai_compat`` only for OpenAI-compatible ones),
so a config that uses one kind does not depend on the other's module.
"""

from __future__ import annotations

from connectors.providers.base import Provider
from jobs.dispatch.config import DeploymentConfig, RoutingConfig


def build_providers(config: RoutingConfig) -> dict[str, Provider]:
    """Deployment name -> its client, configured from the deployment's table."""
    return {name: build_provider(deployment) for name, deployment in config.deployments.items()}


def build_provider(deployment: DeploymentConfig) -> Provider:
    if deployment.provider == "simulated":
        from connectors.providers.simulated import SimulatedProvider

        provider: Provider = SimulatedProvider(**deployment.simulation.model_dump())
        return provider
    from connectors.providers.openai_compat import OpenAIProvider

    assert deployment.base_url is not None  # the config requires it for provider = "openai"
    key = deployment.api_key.get_secret_value() if deployment.api_key else None
    provider = OpenAIProvider(
        base_url=deployment.base_url,
        api_key=key,
        kind=deployment.provider_kind,
        continuation=deployment.continuation,
    )
    return provider
