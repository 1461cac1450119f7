"""The foundation every other layer stands on: the error hierarchy, bounded reads of untrusted
files, name and path shapes, interrupt handling. Imports nothing of the kit above it."""
