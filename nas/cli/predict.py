"""``nas predict``: fit and evaluate accuracy predictors, learning curves, zero-cost proxies;
``nas predict latency fit``: latency predictors from measurement files (:mod:`nas.cli.predict_latency`)."""

from __future__ import annotations

import json
from pathlib import Path

from nas.cli._common import add_space_options, read_arch, space_from_args


def _split(n: int, test_frac: float, seed: int):
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_frac * n))
    return order[n_test:], order[:n_test]


def cmd_list(args) -> int:
    from predictors import list_predictors, list_proxies

    print("accuracy predictors: " + ", ".join(list_predictors()))
    print("zero-cost proxies:   " + ", ".join(list_proxies()))
    return 0


def cmd_fit(args) -> int:
    import numpy as np

    from predictors import evaluate_predictor, get_predictor, read_arch_table

    space = space_from_args(args.space, args.option)
    archs, y, _ = read_arch_table(args.data, args.target, space)
    train, test = _split(len(archs), args.test_frac, args.seed)
    predictor = get_predictor(args.model, space, seed=args.seed, graph_features=args.graph_features)
    if args.pretrain and hasattr(predictor, "pretrain"):
        rng = np.random.default_rng(args.seed)
        predictor.pretrain([space.sample(rng) for _ in range(args.pretrain)])
    predictor.fit([archs[i] for i in train], y[train])
    print(f"fitted {args.model} on {train.size} archs of {args.data} (target {args.target!r})")
    if test.size >= 2:
        scores = evaluate_predictor(predictor, [archs[i] for i in test], y[test])
        print(f"held-out ({test.size} archs): " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if args.out:
        print(f"saved {predictor.save(args.out)}")
    return 0


def cmd_eval(args) -> int:
    from predictors import evaluate_predictor, load_predictor, read_arch_table

    space = space_from_args(args.space, args.option)
    predictor = load_predictor(args.model, space)
    archs, y, _ = read_arch_table(args.data, args.target, space)
    scores = evaluate_predictor(predictor, archs, y)
    print(json.dumps({"model": predictor.name, "archs": len(archs), **scores}))
    return 0


def cmd_curve(args) -> int:
    import numpy as np

    from predictors import get_predictor, learning_curve, read_arch_table

    space = space_from_args(args.space, args.option)
    archs, y, _ = read_arch_table(args.data, args.target, space)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in models:
        get_predictor(name, space)  # unknown names fail before any fitting
    factories = {name: (lambda seed, name=name: get_predictor(name, space, seed=seed)) for name in models}
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = learning_curve(factories, archs, y, sizes, args.repeats, args.test_frac, args.seed,
                          progress=print if args.verbose else None)
    print(f"{'model':<14} {'n_train':>7} {'tau':>7} {'rho':>7} {'mae':>9}")
    for name in models:
        for n in sorted({r["n_train"] for r in rows}):
            sel = [r for r in rows if r["model"] == name and r["n_train"] == n]
            print(f"{name:<14} {n:>7} {np.mean([r['kendall_tau'] for r in sel]):>7.3f} "
                  f"{np.mean([r['spearman'] for r in sel]):>7.3f} {np.mean([r['mae'] for r in sel]):>9.4f}")
    if args.png:
        from nas.plots import plot_learning_curve

        print(f"plot {plot_learning_curve(args.png, rows, title=f'{args.data}: {args.target}')}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def cmd_proxies(args) -> int:
    import torch

    from predictors import DEFAULT_PROXIES, compute_proxies
    from supernets.data import load_dataset

    space = space_from_args(args.space, args.option)
    arch = space.validate(read_arch(args.arch))
    data = load_dataset(args.dataset, root=args.root, seed=args.seed)
    x, y = data.train.tensors[0][:args.batch_size], data.train.tensors[1][:args.batch_size]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = space.build(arch, data.num_classes, data.input_shape)
    names = args.names.split(",") if args.names else list(DEFAULT_PROXIES)
    print(json.dumps(compute_proxies(model, x, y, names, seed=args.seed)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="accuracy predictors and zero-cost proxies")
    sp = p.add_subparsers(dest="predict_command", metavar="ACTION")
    sp.required = True

    q = sp.add_parser("list", help="list accuracy predictors and zero-cost proxies")
    q.set_defaults(func=cmd_list)

    def data_args(q) -> None:
        q.add_argument("space")
        q.add_argument("data", help="CSV with an 'arch' JSON column and the target column")
        q.add_argument("--target", default="accuracy", help="column to predict (default accuracy)")
        q.add_argument("--seed", type=int, default=0)
        add_space_options(q)

    q = sp.add_parser("fit", help="fit a predictor on a CSV, report held-out quality, save it")
    data_args(q)
    q.add_argument("--model", default="gbdt", help="predictor name (see `nas predict list`)")
    q.add_argument("--out", help="write the fitted predictor here (.npz)")
    q.add_argument("--test-frac", type=float, default=0.2, help="held-out fraction (default 0.2)")
    q.add_argument("--graph-features", action="store_true", help="add graph features")
    q.add_argument("--pretrain", type=int, default=0, metavar="N",
                   help="FBNetV3 pretraining on FLOPs/params of N sampled archs (mlp_ensemble)")
    q.set_defaults(func=cmd_fit)

    q = sp.add_parser("eval", help="Kendall tau, Spearman rho and MAE of a saved predictor")
    q.add_argument("space")
    q.add_argument("model", help="predictor file written by `nas predict fit --out`")
    q.add_argument("data", help="CSV with an 'arch' JSON column and the target column")
    q.add_argument("--target", default="accuracy")
    add_space_options(q)
    q.set_defaults(func=cmd_eval)

    q = sp.add_parser("curve", help="learning curve: tau vs number of training archs (+ PNG)")
    data_args(q)
    q.add_argument("--models", default="ridge,gbdt,gp,mlp_ensemble", help="comma-separated names")
    q.add_argument("--sizes", default="25,50,100,200", help="comma-separated training sizes")
    q.add_argument("--repeats", type=int, default=3)
    q.add_argument("--test-frac", type=float, default=0.3)
    q.add_argument("--png", help="write the plot here")
    q.add_argument("--json", help="write every row here")
    q.add_argument("--verbose", "-v", action="store_true")
    q.set_defaults(func=cmd_curve)

    q = sp.add_parser("proxies", help="zero-cost proxy scores of one architecture")
    q.add_argument("space")
    q.add_argument("arch", help="architecture JSON, or a path to a JSON file")
    q.add_argument("--names", help="comma-separated proxies (default: predictors.DEFAULT_PROXIES; "
                                    "see `nas predict list`)")
    q.add_argument("--dataset", default="digits")
    q.add_argument("--root", help="local folder of a non-embedded data set")
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("--seed", type=int, default=0)
    add_space_options(q)
    q.set_defaults(func=cmd_proxies)

    from nas.cli.predict_latency import register as register_latency

    register_latency(sp)
