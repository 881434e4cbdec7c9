"""``nas supernet train|eval|extract``: Once-for-All supernets from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from nas.cli._common import read_arch, run_dir

__all__ = ["register"]

FORMATS = ("state_dict", "torchscript", "onnx")


def _arch(net, text: str):
    """``largest``, ``smallest``, inline JSON or a JSON file."""
    if text in ("largest", "smallest"):
        return net.largest_arch if text == "largest" else net.smallest()
    return net.space.validate(read_arch(text))


def cmd_train(args) -> int:
    from nas.experiment import load_experiment
    from nas.run import train_experiment_supernet

    exp = load_experiment(args.experiment, "supernet")  # validated whole before anything runs
    out = Path(args.run_dir) if args.run_dir else run_dir(None, Path(args.experiment).stem)
    result = train_experiment_supernet(exp, out, restart=args.restart, max_steps=args.max_steps,
                                       command=args.command_line)
    state = "finished" if result.finished else "stopped (resume with the same command)"
    print(f"supernet {state} after {result.steps} steps; checkpoint in {out}")
    return 0


def _load(args):
    from supernets import load_supernet
    from supernets.data import load_dataset

    net, state = load_supernet(args.checkpoint)
    return net, state, (lambda: load_dataset(state.data, args.data_root, seed=state.seed))


def cmd_eval(args) -> int:
    from supernets import evaluate_subnet

    net, state, data = _load(args)
    arch = _arch(net, args.arch)
    acc = evaluate_subnet(net, arch, data(), split=args.split, calib_images=args.calib_images,
                          seed=state.seed)
    print(json.dumps({"arch_key": arch.key, "split": args.split, "accuracy": acc}))
    return 0


def cmd_extract(args) -> int:
    from nas.export import export_subnet
    from supernets import calibration_batches

    net, state, data = _load(args)
    arch = net.set_active(_arch(net, args.arch))
    if args.calib_images > 0:  # recalibrate the supernet for this subnet before extracting it
        net.recalibrate_bn(calibration_batches(data().train, args.calib_images, seed=state.seed))
    files = export_subnet(net.extract(arch), net.space, arch, args.output, state.input_shape,
                          state.num_classes, args.format or FORMATS, state.space_options,
                          state.seed)
    print(f"wrote {', '.join(v['path'] for v in files.values())} (each re-loaded and checked) "
          f"and {Path(args.output) / 'arch.json'}")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("supernet", help="train, evaluate and extract Once-for-All supernets")
    cmds = parser.add_subparsers(dest="supernet_command", metavar="SUBCOMMAND")
    cmds.required = True

    p = cmds.add_parser("train", help="train a supernet with progressive shrinking (resumable)")
    p.add_argument("experiment", help="experiment YAML file: space, data, seed, supernet.train")
    p.add_argument("--run-dir", "--out", "-o", dest="run_dir",
                   help="checkpoint folder (default runs/<file name>)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    p.set_defaults(func=cmd_train)

    for name, helptext in (("eval", "accuracy of a subnet with inherited weights"),
                           ("extract", "export a subnet as a standalone model (state_dict, "
                                       "TorchScript, ONNX), each re-loaded and checked")):
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
            p.add_argument("-o", "--output", required=True, help="output folder")
            p.add_argument("--format", action="append", choices=FORMATS,
                           help="a format to write (repeatable; default all three)")
            p.set_defaults(func=cmd_extract)
