"""Built-in experiment presets (TOML files beside this one), installed as package data."""
