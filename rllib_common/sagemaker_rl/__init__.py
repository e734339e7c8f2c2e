"""sagemaker_rl — the platform layer: SageMaker container contract, Ray cluster bootstrap, S3 rendezvous, checkpoints,
estimator launchers and the docker-free local runner, one concern a module (README.md lists them). It knows nothing
of Battlesnake: the training entry point (``rllib_src/train-mabs.py``) uses it, never the other way round.
"""
