"""Judges: one DSPy program per task archetype, compiled from its rubric and labels (human or reviewer, each kind measured apart), scoring curated runs."""
