"""Scale-out on Ray: episodes run on worker actors, the driver plans and stays the one store writer.

Imported only when a run asks for Ray (``agentsynth run SPEC --ray``, a spec's ``[ray]`` table,
``agentsynth.run(spec, ray=...)``): Ray is an optional extra (``pip install "agentsynth[ray]"``).

- :mod:`.limits`: the per-endpoint in-flight limit and its adaptive back-off, held across all
  workers (no Ray import);
- :mod:`.cluster`: connect to (or start) a cluster and check it before any episode runs;
- :mod:`.worker`: the worker actor (environment instances, model clients, the sandbox);
- :mod:`.driver`: :class:`~agentsynth.scaleout.driver.RayRunner`, dispatch with backpressure and
  recovery from a lost worker.
"""
