"""Users, sessions, tokens, API keys, abilities, rate limits and the credential vault."""
