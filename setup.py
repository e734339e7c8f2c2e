"""Battlesnake RL toolkit: an official-rules batched Battlesnake engine, RLlib training, SageMaker platform layer."""

from setuptools import find_packages, setup

TRAIN = ["ray[rllib]==2.60.0", "torch==2.13.0", "tensorboardX>=2.6", "matplotlib>=3.8", "onnx>=1.16", "onnxscript>=0.2",
         "onnxruntime>=1.18"]
# SDK v3 removed RLEstimator: the launchers need v2.
SAGEMAKER = ["sagemaker>=2.257,<3", "boto3>=1.42"]
# Local stand-ins for S3 and the SageMaker API (moto in server mode) used by the local runner and the tests, and the
# Jupyter kernel that executes the notebooks against them (tests/test_notebooks.py).
LOCAL_STANDINS = ["moto[server]>=5", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29"]

setup(
    name="battlesnake-rl",
    version="0.1.0",
    description="Train Battlesnake AIs with multi-agent RL on Ray RLlib, locally or on Amazon SageMaker",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["battlesnake_gym*", "battlesnake_policy*", "battlesnake_rl*",
                                    "battlesnake_server*"]) + ["battlesnake_rllib", "sagemaker_rl"],
    # The training package lives in the SageMaker source_dir beside train-mabs.py; the platform layer in rllib_common
    # (both are also shipped to SageMaker as the estimator's source_dir and dependencies).
    package_dir={"battlesnake_rllib": "rllib_src/battlesnake_rllib", "sagemaker_rl": "rllib_common/sagemaker_rl"},
    install_requires=[
        "numpy>=1.26",
        "numba>=0.60",
        "gymnasium==1.2.2",  # the version ray[rllib] 2.60 pins
        "pettingzoo>=1.25",
        "pillow>=10",
        "h11>=0.14",  # HTTP/1.1 of the arena server (battlesnake-rl serve) and its referee (battlesnake-rl play)
    ],
    extras_require={
        # torch is pinned to the CPU build this machine kind's pip finds locally; a newer torch pulls CUDA (GBs).
        "rllib": TRAIN,
        "sagemaker": SAGEMAKER,
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", *TRAIN, *SAGEMAKER, *LOCAL_STANDINS],
    },
    entry_points={"console_scripts": ["battlesnake-rl=battlesnake_rl.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "License :: OSI Approved :: Apache Software License"],
)
