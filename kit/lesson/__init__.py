"""The lesson's own tools: keep the episodes in step with the kit, check a machine before a
workshop, make JupyterHub links, preview the site.

`sync` refills the episodes' generated blocks and values; `machine` is `kit lesson check`;
`links` builds nbgitpuller links; `site` renders a pandoc preview. The notebook helpers live
with the widgets (`kit.widgets.notebook`). The facade (`kit.api`) forwards to these.
"""

from __future__ import annotations

from kit.lesson.sync import (
    EXAMPLE_PROBE_OUTPUT,
    FILE_MARKER,
    PLACEHOLDER_PREFIX,
    config_placeholders,
    excerpt,
    lesson_files,
    lesson_values,
    load_lesson,
    prose_files,
    refill,
    sync_episodes,
    sync_lesson_files,
    template_files,
    unmarked_values,
)

__all__ = [
    "EXAMPLE_PROBE_OUTPUT",
    "FILE_MARKER",
    "PLACEHOLDER_PREFIX",
    "config_placeholders",
    "excerpt",
    "lesson_files",
    "lesson_values",
    "load_lesson",
    "prose_files",
    "refill",
    "sync_episodes",
    "sync_lesson_files",
    "template_files",
    "unmarked_values",
]
