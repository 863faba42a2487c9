"""Seeds trained together: classifier runs per minute with k models trained one after another (as the
workflow trains an arm's seeds today) against the same k models stacked into one with torch.func.vmap,
each with its own weights, batches and Adam state, all in fp32.

A run is the demo's: the classifier of config.yaml (the published network: it has no batch norm, whose
running statistics vmap would need handled apart), `--clips` training clips, `--epochs` epochs at its batch
size. Each figure times `--steps` optimizer steps after a warm-up and scales them to whole runs. The ratio
`stacked_over_one_by_one` is the speed-up at each k, measured in the same process. The last line printed is
JSON.

    python benchmarks/stacked_seeds.py                     # the CPU, one thread
    python benchmarks/stacked_seeds.py --device cuda       # a GPU
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import yaml
from torch.func import functional_call, grad, stack_module_state, vmap

from diffaug.classifier import NetworkSettings, build_classifier
from diffaug.features import FeatureSpec

ROOT = Path(__file__).resolve().parents[1]


def _models(k: int, network: NetworkSettings, device: str) -> list[torch.nn.Module]:
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(build_classifier(network).to(device))
    return models


def _one_by_one(models, batches, learning_rate: float) -> None:
    optimizers = [torch.optim.Adam(m.parameters(), lr=learning_rate) for m in models]
    for x, y in batches:
        for i, (model, optimizer) in enumerate(zip(models, optimizers)):
            loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def _stacked(models, batches, learning_rate: float) -> dict[str, torch.Tensor]:
    params, buffers = stack_module_state(models)
    params = {name: p.detach().requires_grad_(False) for name, p in params.items()}
    template = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, x, y):
        return torch.nn.functional.cross_entropy(functional_call(template, (p, b), (x,)), y)

    gradients = vmap(grad(loss))
    optimizer = torch.optim.Adam(list(params.values()), lr=learning_rate)
    for x, y in batches:
        for p, g in zip(params.values(), gradients(params, buffers, x, y).values()):
            p.grad = g
        optimizer.step()
    return params


def _largest_difference(models, batches, learning_rate: float) -> float:
    """The largest difference between the weights of the models trained one by one and stacked, from the
    same start on the same batches: what stacking changes in the result (rounding only, when it works)."""
    stacked = _stacked(models, batches, learning_rate)
    _one_by_one(models, batches, learning_rate)
    alone = stack_module_state(models)[0]
    return max((stacked[name] - alone[name]).abs().max().item() for name in stacked)


def _batches(k: int, steps: int, batch_size: int, shape: tuple[int, ...], device: str) -> list[tuple]:
    """`steps` random batches for k models, one each: (k, batch, *shape) inputs and (k, batch) labels."""
    return [
        (torch.randn(k, batch_size, *shape, device=device), torch.randint(0, 10, (k, batch_size), device=device))
        for _ in range(steps)
    ]


def _seconds(train, models, batches, learning_rate: float) -> float:
    train(models, batches[:2], learning_rate)  # warm-up
    if batches[0][0].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(models, batches, learning_rate)
    if batches[0][0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 3, 15])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps timed at each k")
    parser.add_argument("--clips", type=int, default=640, help="training clips of a run")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    network = NetworkSettings.from_config(config["classifier"])
    shape = FeatureSpec(**config["features"]).shape
    batch_size, learning_rate = config["classifier"]["batch_size"], config["classifier"]["learning_rate"]
    steps_per_run = -(-args.clips // batch_size) * args.epochs
    rows = []
    for k in args.models:
        batches = _batches(k, args.steps, batch_size, shape, args.device)
        one = _seconds(_one_by_one, _models(k, network, args.device), batches, learning_rate)
        stacked = _seconds(_stacked, _models(k, network, args.device), batches, learning_rate)
        runs_per_minute = {
            name: 60 * k * args.steps / seconds / steps_per_run
            for name, seconds in (("one_by_one", one), ("stacked", stacked))
        }
        rows.append(
            {
                "models": k,
                **{f"runs_per_minute_{n}": round(v, 2) for n, v in runs_per_minute.items()},
                "stacked_over_one_by_one": round(one / stacked, 2),
            }
        )
        print(
            f"{k:>3} models: {rows[-1]['runs_per_minute_one_by_one']:8.2f} runs/min one by one, "
            f"{rows[-1]['runs_per_minute_stacked']:8.2f} stacked ({rows[-1]['stacked_over_one_by_one']}x)",
            flush=True,
        )
    difference = _largest_difference(
        _models(3, network, args.device), _batches(3, 5, batch_size, shape, args.device), learning_rate
    )
    print(f"largest weight difference after 5 steps, 3 models stacked against one by one: {difference:.2e}")
    figures = {"device": args.device, "threads": args.threads, "steps_per_run": steps_per_run, "rows": rows}
    print(json.dumps(figures | {"largest_weight_difference": difference}))


if __name__ == "__main__":
    main()
