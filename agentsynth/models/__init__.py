"""Model providers: OpenAI-compatible endpoints and the built-in sim."""
