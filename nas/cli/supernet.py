"""``nas supernet train|eval|extract``: Once-for-All supernets from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nas.cli._common import count, read_arch, run_dir

__all__ = ["register"]

FORMATS = ("state_dict", "torchscript", "onnx")


def _arch(net, text: str):
    """``largest``, ``smallest``, inline JSON or a JSON file."""
    if text in ("largest", "smallest"):
        return net.largest_arch if text == "largest" else net.smallest()
    return net.space.validate(read_arch(text))


def _launch_mode(args, processes: int) -> tuple[str, int]:
    """("ray", workers), ("local", nproc) or ("here", 1); refuses flags that do not fit."""
    from nas.errors import ConfigError
    from nas.launch import under_launcher

    ray_only = [flag for flag, value in (("--workers", args.workers),
                                         ("--gpus-per-worker", args.gpus_per_worker),
                                         ("--max-failures", args.max_failures)) if value is not None]
    if args.ray_address:
        if args.nproc is not None:
            raise ConfigError("--nproc starts processes on this machine and --ray-address on a "
                              "Ray cluster; give one of them (with Ray: --workers N)")
        return "ray", args.workers if args.workers is not None else processes
    if ray_only:
        raise ConfigError(f"{', '.join(ray_only)}: only with --ray-address auto|ray://HOST:10001|local")
    if under_launcher():  # torchrun started this process: it is one rank already
        if args.nproc is not None and args.nproc > 1:
            raise ConfigError("--nproc: this process is already one rank of a launched group "
                              f"(WORLD_SIZE={os.environ['WORLD_SIZE']}); drop --nproc under torchrun")
        return "here", 1
    nproc = args.nproc if args.nproc is not None else processes
    if nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {nproc}")
    return ("local", nproc) if nproc > 1 else ("here", 1)


def cmd_train(args) -> int:
    from nas import launch
    from nas.experiment import load_experiment

    exp = load_experiment(args.experiment, "supernet")  # validated whole before anything runs
    out = Path(args.run_dir) if args.run_dir else run_dir(None, Path(args.experiment).stem)
    job = launch.TrainJob(args.experiment, str(out), args.restart, args.max_steps,
                          tuple(args.plugin), tuple(args.command_line)).absolute()
    mode, count = _launch_mode(args, exp.compute.processes)
    if mode == "ray":
        launch.launch_ray(job, count, args.ray_address, gpus_per_worker=args.gpus_per_worker or 0.0,
                          max_failures=args.max_failures or 0)
    elif mode == "local":
        launch.launch_local(job, count)
    else:
        ran = launch.run_job(job)
        if ran["rank"] != 0:
            return 0  # rank 0 reports for the group
    steps, finished = launch.run_summary(out)
    where = {"ray": f" on {count} Ray workers", "local": f" in {count} processes"}.get(mode, "")
    state = "finished" if finished else "stopped (resume with the same command)"
    print(f"supernet {state} after {steps} steps{where}; checkpoint in {out}")
    return 0


def _load(args):
    from supernets import load_supernet
    from supernets.data import DataConfig, load_data

    net, state = load_supernet(args.checkpoint)
    settings = dict(state.data_config or {"name": state.data})  # the data it was trained on
    if args.data_root:
        settings["root"] = args.data_root
    return net, state, (lambda: load_data(DataConfig(**settings), state.seed))


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


def _add_launch_flags(p) -> None:
    """Data-parallel training (docs/distributed.md); under torchrun none is needed."""
    g = p.add_argument_group("data-parallel training (see docs/distributed.md; under torchrun "
                             "no flag is needed)")
    g.add_argument("--nproc", type=int, metavar="N",
                   help="processes on this machine, started with torch's elastic launcher "
                        "(gloo on CPU, one GPU each on CUDA; default compute.processes)")
    g.add_argument("--ray-address", metavar="ADDRESS",
                   help="train on Ray Train workers: 'auto' or 'ray://HOST:10001' (a cluster), "
                        "or 'local' (a local Ray on this machine)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="Ray Train workers (default compute.processes)")
    g.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per Ray worker (default 0)")
    g.add_argument("--max-failures", type=int, metavar="K",
                   help="Ray restarts the workers up to K times after a failure, each resuming "
                        "from the last checkpoint (default 0; -1: unlimited)")


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
    _add_launch_flags(p)
    p.set_defaults(func=cmd_train)

    for name, helptext in (("eval", "accuracy of a subnet with inherited weights"),
                           ("extract", "export a subnet as a standalone model (state_dict, "
                                       "TorchScript, ONNX), each re-loaded and checked")):
        p = cmds.add_parser(name, help=helptext)
        p.add_argument("checkpoint", help="run folder or its supernet.pt")
        p.add_argument("--arch", required=True,
                       help="architecture JSON (inline or file), or 'largest' / 'smallest'")
        p.add_argument("--calib-images", type=count(1 if name == "eval" else 0, 1_000_000), default=256,
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
