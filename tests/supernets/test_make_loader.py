"""make_loader: one seeded order shared by every rank; mid-epoch resume reads nothing skipped."""

import torch

from supernets.data import load_dataset, make_loader


def test_two_ranks_see_what_one_process_sees_with_the_doubled_batch():
    data = load_dataset("digits")
    one = [y for _, y in make_loader(data.train, 8, seed=3, epoch=1)]
    ranks = [[y for _, y in make_loader(data.train, 4, seed=3, epoch=1, rank=r, world_size=2)]
             for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1])
    for k in range(len(one)):
        assert sorted(one[k].tolist()) == sorted(torch.cat([ranks[0][k], ranks[1][k]]).tolist())
    other_epoch = [y for _, y in make_loader(data.train, 8, seed=3, epoch=2)]
    assert not torch.equal(one[0], other_epoch[0])


def test_start_batch_skips_without_reading():
    data = load_dataset("digits")
    read = []

    class Spy(torch.utils.data.Dataset):
        def __len__(self):
            return len(data.train)

        def __getitem__(self, i):
            read.append(i)
            return data.train[i]

    full = [y for _, y in make_loader(data.train, 8, seed=1)]
    rest = [y for _, y in make_loader(Spy(), 8, seed=1, start_batch=3)]
    assert torch.equal(rest[0], full[3]) and len(rest) == len(full) - 3
    assert len(read) == 8 * len(rest)
