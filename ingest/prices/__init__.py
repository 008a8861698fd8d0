"""Prices: providers, the shared rate limit, the PriceFetcher actor pool, the cache, valuation."""
