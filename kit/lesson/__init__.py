"""The lesson's own tools: keep the episodes in step with the kit, check a machine before a
workshop, make JupyterHub links, preview the site.

`sync` refills the episodes' generated blocks and values; `template` makes the learners'
template repository; `machine` is `kit lesson check`; `links` builds nbgitpuller links; `site`
renders a pandoc preview. The notebook helpers live with the widgets (`kit.widgets.notebook`).
The facade (`kit.api`) forwards to these; nothing is re-exported here.
"""
