"""The project the environment installs from src/."""

NAME = "shape-pypi-self"
