"""The workspace model: what a Pixi workspace, its lock and the recipe files in it say, read and
validated where they enter. Knows nothing of options, plans, templates or engines."""
