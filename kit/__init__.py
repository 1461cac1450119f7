"""pixi-deploy-kit: read a Pixi workspace, render, check, build and probe its containers."""
