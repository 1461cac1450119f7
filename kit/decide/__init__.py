"""Deciding: the one option schema (`options`), the styles and the plan that turns a workspace
and options into every decision the rendered files print."""
