"""Pictures (PNG via matplotlib's Agg backend, so no display is needed)."""
