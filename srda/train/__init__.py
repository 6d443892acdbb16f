"""Training and inference shared by every method."""
