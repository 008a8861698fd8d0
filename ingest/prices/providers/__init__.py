"""Price providers behind one interface; `provider_chain(settings, currency)` is the configured
fallback order (LEDGERFLOW_PRICE_PROVIDER, comma-separated), asking prices in `currency`."""

from __future__ import annotations

from ingest.config import Settings
from ingest.prices.providers.base import PriceProvider, ProviderConfig
from ingest.prices.providers.coingecko import CoinGecko
from ingest.prices.providers.defillama import DefiLlama

PROVIDERS: dict[str, type[PriceProvider]] = {"coingecko": CoinGecko, "defillama": DefiLlama}


def make_provider(name: str, settings: Settings, currency: str) -> PriceProvider:
    currency = currency.lower()
    if name == "coingecko":
        config = ProviderConfig(
            settings.coingecko_url,
            settings.coingecko_api_key,
            settings.coingecko_key_kind,
            currency,
        )
    elif name == "defillama":
        config = ProviderConfig(settings.defillama_url, currency=currency)
    else:
        raise ValueError(f"unknown price provider {name!r}; known: {', '.join(PROVIDERS)}")
    return PROVIDERS[name](config)


def provider_names(settings: Settings) -> list[str]:
    names = [n.strip().lower() for n in settings.price_provider.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown or not names:
        raise ValueError(
            f"LEDGERFLOW_PRICE_PROVIDER: unknown {unknown or names}; known: {', '.join(PROVIDERS)}"
        )
    return names


def provider_chain(settings: Settings, currency: str) -> list[PriceProvider]:
    return [make_provider(n, settings, currency) for n in provider_names(settings)]
