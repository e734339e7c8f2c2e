"""The training package of ``train-mabs.py``: RLlib-facing pieces (environment adapter, later config, model, sampler).

It may import ``battlesnake_gym`` (the game) and Ray; it reaches SageMaker only through ``sagemaker_rl``.
"""
