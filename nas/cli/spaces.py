"""``nas spaces``, ``nas sample``, ``nas describe``, ``nas ops``: look at spaces and ops."""

from __future__ import annotations

import json

from nas.cli._common import add_space_options, read_arch, space_from_args


def _fmt_size(n: int) -> str:
    return f"{n:,}" if n < 10**7 else f"{n:.3e}"


def cmd_spaces(args) -> int:
    from search_spaces import get_space, list_spaces

    rows = [(name, get_space(name)) for name in list_spaces()]
    width = max(len(name) for name, _ in rows)
    print(f"{'space':<{width}}  {'size':>12}  description")
    for name, space in rows:
        print(f"{name:<{width}}  {_fmt_size(space.size()):>12}  {space.description}")
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    space = space_from_args(args.space, args.option)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.n):
        print(space.sample(rng).to_json())
    return 0


def cmd_describe(args) -> int:
    space = space_from_args(args.space, args.option)
    arch = space.validate(read_arch(args.arch))
    shape = tuple(args.input_shape) if args.input_shape else space.input_shape
    layers = space.layers(arch, shape, args.num_classes)
    cost = space.complexity(arch, shape, args.num_classes)
    if args.json:
        print(json.dumps({"key": arch.key, "arch": arch.to_dict(), "flops": cost.flops,
                          "params": cost.params, "layers": [s.to_dict() for s in layers]}))
        return 0
    print(f"space {space.name}  key {arch.key}  input {shape}")
    print(f"FLOPs {cost.flops / 1e6:.2f} M   params {cost.params / 1e6:.3f} M   layers {len(layers)}")
    for spec in layers:
        params = ", ".join(f"{k}={v}" for k, v in spec.params)
        print(f"  {spec.path:<28} {spec.op:<18} {str(spec.in_shape):<16} -> {str(spec.out_shape):<16} {params}")
    return 0


def cmd_ops(args) -> int:
    from nas.catalogue import SUPERNET_DECISIONS, describe_ops

    ops = describe_ops()
    if args.json:
        print(json.dumps({"ops": [op.to_dict() for op in ops], "supernets": SUPERNET_DECISIONS}))
        return 0
    width = max(len(op.name) for op in ops)
    print(f"{'op':<{width}}  parameters (type = default) [what an OFA supernet makes elastic]")
    for op in ops:
        params = ", ".join(p.describe() for p in op.params) or "(none)"
        dynamic = "" if not op.elastic or op.ofa_dynamic else \
            "  (no OFA dynamic op: only shape-preserving values)"
        print(f"{op.name:<{width}}  {params}{dynamic}")
    print("\ndecisions each supernet accepts (supernet.type):")
    for kind, text in SUPERNET_DECISIONS.items():
        print(f"  {kind:<6} {text}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("spaces", help="list the registered search spaces with their sizes")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("ops", help="list the registered ops, their parameters, what a supernet "
                                   "can make elastic and which decisions each supernet accepts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("sample", help="sample architectures as JSON lines")
    p.add_argument("space")
    p.add_argument("-n", type=int, default=1, help="how many (default 1)")
    p.add_argument("--seed", type=int, default=0)
    add_space_options(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("describe", help="FLOPs, params and layers of an architecture")
    p.add_argument("space")
    p.add_argument("arch", help="architecture JSON, or a path to a JSON file")
    p.add_argument("--input-shape", type=int, nargs="+", metavar="D")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_space_options(p)
    p.set_defaults(func=cmd_describe)
