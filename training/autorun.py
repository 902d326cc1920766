"""Run a user's script or notebook as a trial, with what it lacks added from outside.

    python /path/to/training/autorun.py [--keras-checkpoints] model.py|model.ipynb [ARGS...]

It is run by path, never as `-m training.autorun`, so that a repository with its own
`training.py` is not shadowed by this package: the harness is imported first, then
forgotten (sys.modules), and the user's code runs as __main__ with its own folder first on
sys.path, exactly as `python model.py` would run it.

--keras-checkpoints wraps keras.Model.fit (training/_inject.py): a checkpoint every epoch,
resume after a kill, an epoch record for pruning and the report. A notebook runs as its code
cells in order, magics dropped (training/notebook.py).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

KERAS_FLAG = "--keras-checkpoints"


def main(argv: list[str]) -> None:
    inject = KERAS_FLAG in argv[:1]
    args = argv[1:] if inject else argv
    if not args:
        sys.exit(f"usage: autorun.py [{KERAS_FLAG}] SCRIPT.py|NOTEBOOK.ipynb [ARGS...]")
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # where `training` lives
    # Imported only now: run by path, this file can import the harness once sys.path has it.
    from training._inject import WARNING, install_keras_checkpoints
    from training.notebook import run_notebook

    if inject and (reason := install_keras_checkpoints()) is not None:
        print(WARNING.format(reason=reason), file=sys.stderr)
    for name in [m for m in sys.modules if m == "training" or m.startswith("training.")]:
        del sys.modules[name]  # the user's own `training`, if any, imports afresh
    entry = Path(args[0])
    sys.argv = list(args)
    sys.path[0] = str(entry.parent.resolve())
    if entry.suffix == ".ipynb":
        os.environ.setdefault("MPLBACKEND", "Agg")  # plt.show() in a notebook: no window
        run_notebook(entry)
    else:
        runpy.run_path(str(entry), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
