"""The experiments' harness: what every claim shares and no claim owns.

- `config`: experiment configs (`load_config`, `load_experiment`, `setting`);
- `io`: atomic writes, the one JSON writer (`write_json`), `docs/data` and the results.md blocks;
- `tables`: number cells and the step/horizon check's words;
- `figures`: headless pyplot on the public style `spikejax.plot.style`, PNG + PDF, fitted lines;
- `seeds`: seed keys (`key(10_000 + d)`, right-sign selection);
- `parallel`: configs in worker processes;
- `window`: full-batch searches on a window of the grid;
- `search`, `onepass`, `flows`: the runs more than one claim makes (full-batch grid searches,
  one-pass first passages, final overlaps of flows and full-batch GD).
"""

from .config import load_config, load_experiment, setting, setting_or
from .figures import plot_fit, pyplot, save_figure
from .io import json_default, read_data, replace_block, write_block, write_file, write_json
from .seeds import seed_keys
from .tables import fmt

__all__ = ["fmt", "json_default", "load_config", "load_experiment", "plot_fit", "pyplot", "read_data", "replace_block",
           "save_figure", "seed_keys", "setting", "setting_or", "write_block", "write_file", "write_json"]
