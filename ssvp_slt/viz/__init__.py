"""Pictures of what models do (offline)."""
