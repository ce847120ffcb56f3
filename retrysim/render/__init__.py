"""The render layer: documents and results as text for a terminal (Rich)."""
