"""The offline lab: local stand-ins for the pixi image, conda-forge and the pixi binary (see README.md)."""
