"""The agreement registry: the model, its validation and its live reload."""
