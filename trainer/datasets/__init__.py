"""The registry of datasets: the config's `dataset` name -> the object that says what it is.

Adding a dataset is one module (a `Dataset` subclass, see base.py) and one line here.
"""

from trainer.datasets.base import Dataset
from trainer.datasets.emnist import EmnistDataset
from trainer.datasets.emnist_lines import EmnistLinesDataset
from trainer.datasets.handwriting_lines import (
    AltoLinesDataset,
    IamLinesDataset,
    PageXmlLinesDataset,
)
from trainer.datasets.pages import (
    AltoPagesDataset,
    EmnistPagesDataset,
    IamParagraphsDataset,
    PageXmlPagesDataset,
)

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        EmnistDataset(),
        EmnistLinesDataset(),
        PageXmlLinesDataset(),
        AltoLinesDataset(),
        IamLinesDataset(),
        EmnistPagesDataset(),
        PageXmlPagesDataset(),
        AltoPagesDataset(),
        IamParagraphsDataset(),
    )
}
