"""The train/validation split and each epoch's order, reproducible from a seed.

Shuffling is done per epoch in NumPy with a seed derived from ``(seed,
epoch)``, which makes every epoch's order reproducible; that is what lets a
resumed run continue mid-epoch exactly where the killed one stopped.
"""
import numpy as np


def split_train_val(paths, labels, val_fraction=0.2, seed=0):
    """Splits images into train and validation sets, per class, reproducibly.

    Every class with at least two images gets at least one validation image and
    keeps at least one training image. The same ``seed`` gives the same split.

    Args:
      paths: image paths.
      labels: integer labels, same length.
      val_fraction: fraction of each class used for validation, in (0, 1).
      seed: random seed of the split.

    Returns:
      ``(train_paths, train_labels, val_paths, val_labels)``.

    Raises:
      ValueError: if ``val_fraction`` is not in (0, 1) or a split set is empty.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1), got %r" % (val_fraction,))
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        if len(idx) < 2:
            train_idx.extend(idx)
            continue
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    train_idx, val_idx = sorted(train_idx), sorted(val_idx)
    if not train_idx or not val_idx:
        raise ValueError(
            "too few images to split into train and validation sets (%d images); "
            "add images or give a separate --val-dir" % len(labels))
    return ([paths[i] for i in train_idx], labels[train_idx],
            [paths[i] for i in val_idx], labels[val_idx])


def epoch_order(num_examples, seed, epoch):
    """The shuffled example order of one epoch (the same for the same arguments).

    Args:
      num_examples: number of training examples.
      seed: the run's seed.
      epoch: zero-based epoch number.

    Returns:
      An int64 permutation of ``range(num_examples)``.
    """
    rng = np.random.RandomState([seed % (2 ** 32), epoch % (2 ** 32), 0x5EED])
    return rng.permutation(num_examples).astype(np.int64)
