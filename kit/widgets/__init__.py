"""Jupyter front end of the kit: the container `Studio` panel and helpers for the notebooks.

Importing this package loads ipywidgets (the `lab` extra) but starts nothing: engines are only
probed when a `Studio` is made, so `import kit.widgets` stays cheap and side-effect free.
"""

from kit.widgets.studio import Studio

__all__ = ["Studio"]
