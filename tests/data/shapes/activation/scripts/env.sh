# Sourced by pixi's activation (the workspace's [activation] scripts).
export SHAPE_SCRIPT=env.sh
