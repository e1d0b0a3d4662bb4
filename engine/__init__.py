"""gdw-tui's training engine: GDW and its baselines, data protocols, run directories and events.

Importing `engine` does not import torch; the torch-free modules are `config`, `method_table`,
`events`, `rundir`, `runs`, `launch`, `console`, `signals` and `fast_exit`. `engine.methods`, `engine.data`,
`engine.models`, `engine.device`, `engine.checkpoint`, `engine.trainer` (the loop) and
`engine.lifecycle` (`train_run`: the run around the loop) need torch.
"""

__version__ = "0.1.0"
