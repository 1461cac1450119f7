# Sourced by pixi's activation of the tools environment ([feature.tools.activation] scripts).
export SHAPE_TOOLS=tools.sh
