"""Data-preparation helpers (video pre-processing run by the preparation scripts)."""
