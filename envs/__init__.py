"""Built-in agentsynth environments, one module per domain.

They are registered with Gymnasium through the ``agentsynth.envs`` entry-point group (see
pyproject.toml), exactly as a third-party package registers its own.
"""
