"""``make_loader``: one epoch of batches, the same order on every data-parallel rank."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from supernets.data._config import DataError


class _Skip(Sampler[int]):
    """The indices of ``sampler`` after the first ``skip`` (nothing skipped is read)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)  # type: ignore[arg-type]


class _Loader(DataLoader):
    """A ``DataLoader`` whose workers' :class:`DataError`\\ s keep their one-line message
    (torch re-raises them with the worker's traceback folded into the message)."""

    def __iter__(self) -> Iterator:
        return _clean(super().__iter__())


def _clean(batches: Iterator) -> Iterator:
    try:
        yield from batches
    except DataError as exc:
        text = str(exc)
        marker = f"{DataError.__name__}: "
        if "Original Traceback" in text and marker in text:
            raise DataError(text.rsplit(marker, 1)[1].strip()) from None
        raise


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                epoch: int = 0, start_batch: int = 0, rank: int = 0, world_size: int = 1,
                drop_last: bool = True, num_workers: int = 0, pin_memory: bool = False
                ) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` for one epoch, the same on every process.

    The order is torch's ``DistributedSampler`` with ``seed`` and ``epoch``: every rank
    draws the same permutation and takes every ``world_size``-th index from ``rank``, so
    ``world_size`` processes with ``batch_size`` each see, step for step, the samples
    that one process with ``world_size * batch_size`` sees. ``start_batch`` skips the
    epoch's first batches without reading them (resume mid-epoch).

    A data set with an ``at_epoch(seed, epoch)`` method (an augmented training split)
    is read through the view it returns, so each item's augmentation is a function of
    (``seed``, ``epoch``, index) alone: the same for any ``num_workers``, rank count or
    resume point, and new every epoch.

    Args:
        batch_size: samples per batch of this process.
        shuffle: a seeded permutation per epoch (False: the data set's order).
        drop_last: drop the epoch's last incomplete batch (and the samples that do not
            divide evenly among the ranks).
        num_workers, pin_memory: as ``torch.utils.data.DataLoader``; with workers they
            persist across the epoch's iterations. ``DataConfig.loader_options`` gives
            an experiment's values.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    at_epoch = getattr(dataset, "at_epoch", None)
    if callable(at_epoch):
        dataset = at_epoch(seed, epoch)
    sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                               shuffle=shuffle, seed=seed, drop_last=drop_last)
    sampler.set_epoch(epoch)
    if start_batch:
        sampler = _Skip(sampler, start_batch * batch_size)
    return _Loader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                   num_workers=num_workers, pin_memory=pin_memory,
                   persistent_workers=num_workers > 0)
