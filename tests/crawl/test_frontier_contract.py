"""Runs the Frontier contract (frontier_contract.py) for every implementation in FACTORIES."""

from frontier_contract import *  # noqa: F403  (the contract's tests and its `frontier` fixture)
