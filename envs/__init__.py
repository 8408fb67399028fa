"""Built-in agentsynth environments, one module per domain, each with its sim solver beside it.

``envs/<domain>.py`` is the environment (tasks, verifier, hint); ``envs/<domain>_sim.py`` is how
the ``sim`` model reads that domain's prompts, named by the environment class's ``sim_solver``
and imported only when the sim needs it. A solver may use its environment module's helpers (the
domain's rules: string transforms, unit tables), never the other way round, so there is no import
cycle and no module passes ~400 lines. They are registered with Gymnasium through the
``agentsynth.envs`` entry-point group (see pyproject.toml), exactly as a third-party package
registers its own.
"""
