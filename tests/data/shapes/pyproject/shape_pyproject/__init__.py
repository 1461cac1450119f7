"""The project the environment installs (editable)."""
