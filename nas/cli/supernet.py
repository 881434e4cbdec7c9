"""``nas supernet train|eval|extract``: Once-for-All supernets from the command line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from nas.cli._common import read_arch
from search_spaces import Architecture
from supernets import OFATrainConfig, evaluate_subnet, load_supernet, train_supernet
from supernets.data import load_dataset


def _arch(net, text: str) -> Architecture:
    """``largest``, ``smallest``, inline JSON or a JSON file."""
    if text in ("largest", "smallest"):
        return net.largest_arch if text == "largest" else net.smallest()
    return net.space.validate(read_arch(text))


def _data(meta: dict, root: str | None):
    cfg = meta["config"]
    return load_dataset(meta.get("data", cfg["data"]), root or cfg.get("data_root"), seed=cfg["seed"])


def cmd_train(args) -> int:
    config = OFATrainConfig.from_yaml(args.config)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
    result = train_supernet(None, config, run_dir=run_dir, resume=not args.restart,
                            max_steps=args.max_steps)
    state = "finished" if result.finished else "stopped (resume with the same command)"
    print(f"supernet {state} after {result.steps} steps; checkpoint in {run_dir}")
    return 0


def cmd_eval(args) -> int:
    net, meta = load_supernet(args.checkpoint)
    arch = _arch(net, args.arch)
    data = _data(meta, args.data_root)
    acc = evaluate_subnet(net, arch, data, split=args.split, calib_images=args.calib_images,
                          seed=meta["config"]["seed"])
    print(json.dumps({"arch_key": arch.key, "split": args.split, "accuracy": acc}))
    return 0


def cmd_extract(args) -> int:
    net, meta = load_supernet(args.checkpoint)
    arch = net.set_active(_arch(net, args.arch))
    if args.calib_images > 0:
        data = _data(meta, args.data_root)
        evaluate_subnet(net, arch, data.train, calib_images=args.calib_images, seed=meta["config"]["seed"])
    module = net.extract(arch)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "torchscript":
        example = torch.zeros(1, *meta["input_shape"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.trace(module, example), str(out))
    else:
        torch.save(module.state_dict(), out)
    side = out.with_suffix(".json")
    side.write_text(json.dumps({
        "format": args.format, "space": meta["space"], "space_options": meta["space_options"],
        "fingerprint": meta["fingerprint"], "arch": arch.to_dict(), "arch_key": arch.key,
        "input_shape": meta["input_shape"], "num_classes": meta["num_classes"],
        "calib_images": args.calib_images,
    }, indent=1))
    print(f"wrote {out} ({args.format}) and {side}")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("supernet", help="train, evaluate and extract Once-for-All supernets")
    cmds = parser.add_subparsers(dest="supernet_command", metavar="SUBCOMMAND")
    cmds.required = True

    p = cmds.add_parser("train", help="train a supernet with progressive shrinking (resumable)")
    p.add_argument("config", help="YAML training config (see supernets.OFATrainConfig)")
    p.add_argument("--run-dir", help="checkpoint folder (default runs/<config name>)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    p.set_defaults(func=cmd_train)

    for name, helptext in (("eval", "accuracy of a subnet with inherited weights"),
                           ("extract", "write a subnet as a standalone model")):
        p = cmds.add_parser(name, help=helptext)
        p.add_argument("checkpoint", help="run folder or its supernet.pt")
        p.add_argument("--arch", required=True,
                       help="architecture JSON (inline or file), or 'largest' / 'smallest'")
        p.add_argument("--calib-images", type=int, default=256,
                       help="training images for batch-norm recalibration (default 256)")
        p.add_argument("--data-root", help="local folder of a data set that is not embedded")
        if name == "eval":
            p.add_argument("--split", default="test", choices=("train", "val", "test"))
            p.set_defaults(func=cmd_eval)
        else:
            p.add_argument("-o", "--output", required=True, help="output file, e.g. model.pt")
            p.add_argument("--format", default="torchscript", choices=("torchscript", "state_dict"),
                           help="torchscript (runs without this code) or the build's state_dict")
            p.set_defaults(func=cmd_extract)


__all__ = ["register"]
