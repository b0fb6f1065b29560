"""What every reproduction of a figure is given: where to write, how big."""

import dataclasses
import pathlib


@dataclasses.dataclass
class Context:
    """Settings shared by the `python -m paper reproduce` targets.

    Attributes:
        output: Folder of the report: figures go to `output/figures/`, each
            target's markdown section to `output/sections/`.
        cache: Folder of finished runs (JSON and NumPy files); a rerun reuses
            them and trains only what is missing.
        quick: Tiny sizes that finish in a few minutes on 2 CPU cores.
        seeds: Seeds to use instead of each target's default, or `None`.
        data_dir: Folder of local dataset copies, or `None` to look them up
            (see `paper.data.local_data_dir`).
        ood: Out-of-distribution set of the CIFAR-10 experiments.
        command: The command line that produced the report (for the text).
        verbose: 1 for progress bars, 0 for silence.
    """

    output: pathlib.Path
    cache: pathlib.Path
    quick: bool = False
    seeds: tuple = None
    data_dir: str = None
    ood: str = "mnist"
    command: str = "python -m paper reproduce"
    verbose: int = 1

    def figure_path(self, name):
        """Path of figure `name` (a PNG file name), its folder created."""
        folder = pathlib.Path(self.output) / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def figure_link(self, name, alt):
        """Markdown image of figure `name`, relative to the report."""
        return f"![{alt}](figures/{name})"

    def seeds_or(self, default):
        """The seeds given on the command line, else `default`."""
        return tuple(self.seeds) if self.seeds is not None else tuple(default)
