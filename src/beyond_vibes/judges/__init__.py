"""Judges: one DSPy program per task archetype, compiled from its rubric and human labels, scoring curated runs."""
