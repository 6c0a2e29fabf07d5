"""The LLM gateway: providers, cache, retries, breakers, limits, budgets."""
