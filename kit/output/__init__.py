"""What the kit puts out: rendered files (`render`), their all-or-nothing writing (`write`) and
the staged build context an engine builds from (`staging`)."""
