"""A picture of original vs augmented tiles with their masks outlined, to check they still match."""

from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from roofseg._tf import tf
from roofseg.contracts.augment import AugmentConfig
from roofseg.figures import pyplot, save_png
from roofseg.pipeline.augment import augment
from roofseg.pipeline.dataset import make_dataset
from roofseg.terminal import terminal


def write_preview(
    source: str | os.PathLike,
    out_png: str | os.PathLike,
    count: int = 6,
    split: str = "train",
    seed: int = 0,
    config: AugmentConfig = AugmentConfig(),
    progress: bool = False,
) -> None:
    """Draw ``count`` tiles of ``split``: each as read and augmented, roof outlines in red."""
    plt = pyplot()
    images, masks = next(iter(make_dataset(source, split, batch_size=count, training=False)))
    aug_images, aug_masks = augment(images, masks, tf.constant([seed, 0]), config)
    n = int(images.shape[0])
    fig, axes = plt.subplots(n, 2, figsize=(6, 3 * n), squeeze=False)
    for k in tqdm(range(n), desc="drawing", unit="tile", disable=not progress, file=terminal()):
        for ax, img, mask, title in (
            (axes[k, 0], images[k], masks[k], "tile"),
            (axes[k, 1], aug_images[k], aug_masks[k], "augmented"),
        ):
            ax.imshow(np.asarray(img))
            if np.asarray(mask).any():
                ax.contour(np.asarray(mask)[..., 0], levels=[0.5], colors="red", linewidths=0.8)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    save_png(fig, out_png)
