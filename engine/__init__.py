"""gdw-tui's training engine: GDW and its baselines, data protocols, run directories and events.

Importing `engine` does not import torch; the torch-free modules are `config`, `events`,
`runs` and `launch`. `engine.methods`, `engine.data`, `engine.models` and `engine.trainer`
need torch.
"""

__version__ = "0.1.0"
