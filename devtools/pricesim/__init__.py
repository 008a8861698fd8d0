"""A price service simulator speaking the CoinGecko protocol (`ledgerflow pricesim`)."""
