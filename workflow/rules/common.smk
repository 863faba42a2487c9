import sys
from pathlib import Path

from diffaug import CLASSES
from diffaug.config import ConfigError, check_config
from diffaug.splits import split_names

try:
    check_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as error:
    sys.exit(str(error))

R = config["results"]
SPLITS = split_names(config["protocol"])
SOURCE = config["dataset"]["source"]
if SOURCE == "synthetic":
    DATA_ROOT = f"{R}/data/synthetic"
elif config["dataset"].get("root"):
    DATA_ROOT = config["dataset"]["root"]
else:
    sys.exit("invalid config:\n  dataset.root: required when dataset.source is urbansound8k")
METADATA = f"{DATA_ROOT}/metadata/UrbanSound8K.csv"
if SOURCE == "urbansound8k" and not config["dataset"].get("download") and not Path(METADATA).is_file():
    sys.exit(f"{METADATA} not found: point dataset.root at an extracted UrbanSound8K, or set dataset.download: true")
THREADS = config.get("threads", {})
GENERATING = [v for v in config["variants"] if v != "baseline"]


wildcard_constraints:
    split=r"random|fold\d+",
    class_name="|".join(CLASSES),
    variant="|".join(config["variants"]),
    seed=r"\d+",


def log_for(rule, pattern=""):
    return f"{R}/logs/{rule}{pattern}.log"


def benchmark_for(rule, pattern=""):
    return f"{R}/benchmarks/{rule}{pattern}.tsv"


def diffusion_model(wildcards):
    """The pipeline folder that a split generates with: trained on the split, or the pretrained copy."""
    if config["diffusion"]["pretrained"]:
        return f"{R}/diffusion/pretrained/model"
    return f"{R}/diffusion/{wildcards.split}/model"


def generated_features(wildcards):
    """Generated-clip features that a variant adds to the real training clips."""
    if wildcards.variant == "baseline":
        return []
    return [f"{R}/features/{wildcards.split}/{wildcards.variant}.safetensors"]


def all_metrics():
    return expand(
        f"{R}/models/{{split}}/{{variant}}/seed{{seed}}/metrics.json",
        split=SPLITS,
        variant=config["variants"],
        seed=config["seeds"],
    )


def final_outputs():
    return [f"{R}/tables/accuracy.csv", f"{R}/tables/accuracy.md", f"{R}/plots/accuracy.png"]
