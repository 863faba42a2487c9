import hashlib
import os
import re
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from diffaug.arms import ARMS, IMAGE_SOURCES, MODEL_SOURCES
from diffaug.config import (
    ConfigError,
    check_config,
    classifier_params,
    cuda_available,
    device_problems,
    features_params,
    plan_problems,
    planned_catalogue,
    pretrained_params,
    slurm_partition_problem,
    sorted_keys,
    split_params,
    will_use_cuda,
    written_config,
)
from diffaug.dataset import DatasetError
from diffaug.layouts import URBANSOUND8K_CLASSES, index_file
from diffaug.splits import split_names

# envs/diffaug.yaml installs the project from this checkout: pip expands ${DIFFAUG_ROOT} when
# conda creates the environment (Snakemake copies the env file, so it cannot use a relative path).
os.environ.update(DIFFAUG_ROOT=str(Path(str(workflow.current_basedir)).parents[1]))

# Params compare by their text: with every key sorted, only a changed value reruns a rule. Config
# sections in params come from the config as its files wrote it (WRITTEN), before the schema's
# defaults are filled in, so that a default added to the schema changes no params and reruns
# nothing; the steps fill the defaults in themselves. A config too large to walk (YAML aliases) is
# refused first, and --config's text is read as the booleans and numbers a file would give.
SCHEMA_FILE = workflow.source_path("../schemas/config.schema.yaml")
try:
    WRITTEN = written_config(config, SCHEMA_FILE)
    check_config(config, SCHEMA_FILE)  # fills in the defaults
except ConfigError as error:
    sys.exit(str(error))
canonical = sorted_keys(config)
config.clear()
config.update(canonical)

R = config["results"]
SPLITS = split_names(config["protocol"])
SOURCE = config["dataset"]["source"]
if SOURCE == "synthetic":
    DATA_ROOT = f"{R}/data/synthetic"
elif config["dataset"]["root"]:
    DATA_ROOT = config["dataset"]["root"]
else:
    sys.exit(f"invalid config:\n  dataset.root: required when dataset.source is {SOURCE}")
# The file whose change means the dataset changed: the layout's metadata, or a class-folder tree's root.
METADATA = index_file(config["dataset"], DATA_ROOT)
if SOURCE == "urbansound8k" and not config["dataset"]["download"] and not Path(METADATA).is_file():
    sys.exit(f"{METADATA} not found: point dataset.root at an extracted UrbanSound8K, or set dataset.download: true")
if SOURCE in ("esc50", "folders") and not Path(METADATA).exists():
    sys.exit(f"{METADATA} not found: point dataset.root (and dataset.metadata) at the {SOURCE} layout")
PLANNING = not (workflow.remote_exec or workflow.subprocess_exec)  # the process that plans the run
DEVICES = {section: config[section]["device"] for section in ("diffusion", "generate", "classifier")}
try:
    CATALOGUE = planned_catalogue(config["dataset"], DATA_ROOT)
except DatasetError as error:
    sys.exit(str(error))
# The class list, in label order, names the per-class folders; a download to come has UrbanSound8K's.
CLASSES = CATALOGUE.classes if CATALOGUE else URBANSOUND8K_CLASSES
if PLANNING:
    problems = plan_problems(config, CATALOGUE.clips) if CATALOGUE else []
    if problems:
        sys.exit("config does not fit the dataset:\n" + "\n".join(f"  {p}" for p in problems))
# What the manifest reads of the dataset section: the layout's own keys only for that layout.
LAYOUT_KEYS = {"esc50": ("esc10",), "folders": ("metadata", "folds")}
MANIFEST = {k: config["dataset"][k] for k in ("source", "on_bad_file", "max_seconds", *LAYOUT_KEYS.get(SOURCE, ()))}
if SOURCE == "folders" and not config["dataset"]["metadata"] and CATALOGUE:
    # A class-folder tree has no file to date (a folder's time changes only with its own entries):
    # the list of its clips stands in, so that adding or removing a clip anywhere reruns the manifest.
    MANIFEST["clips"] = hashlib.sha1("\n".join(sorted(CATALOGUE.clips["id"])).encode()).hexdigest()


@cache
def gpu_at_hand():
    """Whether `auto` devices get a GPU: on a cluster, whose scheduler gives one, yes; in a local
    run, if this machine has CUDA, or in a dry run of a config that insists on CUDA. Asked when jobs
    are planned, once the executor is known."""
    if not workflow.local_exec:
        return True
    here = PLANNING and bool({"cuda", "auto"} & set(DEVICES.values())) and cuda_available()
    problems = device_problems(DEVICES, here) if PLANNING else []
    if problems and workflow.dryrun:
        # A GPU study can be checked on a laptop: planned as on the GPU machine it asks for.
        listed = "".join(f"\n  {p}" for p in problems)
        print(f"warning: config does not fit this machine (a real run here is refused):{listed}", file=sys.stderr)
        print("  this dry run plans the jobs as on a machine with CUDA", file=sys.stderr)
        return True
    if problems:
        sys.exit("config does not fit this machine:\n" + "\n".join(f"  {p}" for p in problems))
    return here


def partition_chosen():
    """Whether the run names a SLURM partition, for every rule or per rule."""
    settings = workflow.resource_settings
    per_rule = settings.overwrite_resources.values()
    return "slurm_partition" in settings._parsed_default_resources or any("slurm_partition" in r for r in per_rule)


onstart:
    # Jobs ask for their resources (and so for gpu_at_hand) only once scheduled: without this, a local
    # run would do the work up to the first GPU job before refusing a device it cannot have.
    if workflow.local_exec:
        gpu_at_hand()
    if workflow.executor_plugin is not None and "slurm" in workflow.executor_plugin.name:
        message, fatal = slurm_partition_problem(partition_chosen())
        if message:
            print(("error: " if fatal else "note: ") + message, file=sys.stderr)
        if fatal:
            sys.exit(1)


def gpus(section):
    """The `gpu` resource of the jobs that compute on the section's device; 1 where they will use a GPU."""
    return lambda wildcards: int(will_use_cuda(DEVICES[section], gpu_at_hand()))


THREADS = config["threads"]
FIRST_SEED = config["seeds"][0]
SOURCES = sorted({ARMS[v].generated for v in config["arms"]} - {None})
# What the judges score: every source the arms add, and with any source from the diffusion pipeline's
# image the round trip too, to tell the image's losses from the model's.
SCORED = sorted(set(SOURCES) | ({"round_trip"} if set(SOURCES) & set(IMAGE_SOURCES) else set()))
# Where the clips that the diffusion model decodes are written, per source.
DECODED = {"diffusion": "generated", "reconstruction": "reconstructed"}
# What each step reads of the generate section, so that e.g. `keep` does not rerun generation.
GENERATION = {k: v for k, v in WRITTEN["generate"].items() if k not in ("filter", "keep", "replicates")}
PAIRS = {"per_class": config["generate"]["per_class"], "seed": config["generate"]["seed"]}
REPLICATES = config["generate"]["replicates"]
# Defaults of newer keys (features.log, classifier.model, normalise) and the unused sb_cnn block stay
# out of the params, so that runs of the published settings keep their params.
FEATURES = features_params(WRITTEN["features"])
CLASSIFIER = classifier_params(WRITTEN["classifier"])


def replicate_of(seed):
    """The generated set that a classifier seed trains with: the seed's place in `seeds`, modulo
    the number of sets."""
    return config["seeds"].index(int(seed)) % REPLICATES


wildcard_constraints:
    split=r"(random|fold\d+)(-n\d+)?",
    class_name="|".join(map(re.escape, CLASSES)),
    arm="|".join(config["arms"]),
    source="diffusion|mel_average|round_trip|reconstruction",
    seed=r"\d+",
    replicate=r"\d+",
    half="0|1",


def resources_for(rule, **defaults):
    """A rule's mem_mb and runtime (minutes): its defaults, updated by the config's `resources.<rule>`,
    times the attempt, so that a job retried (`--retries`) after running out of either asks for more."""
    return {
        name: (lambda wildcards, attempt, amount=amount: amount * attempt)
        for name, amount in (defaults | config["resources"].get(rule, {})).items()
    }


def log_for(rule, wildcards=None):
    """results/logs/<rule>[/<wildcards>].log"""
    return str(Path(R, "logs", rule, *filter(None, [wildcards]))) + ".log"


def benchmark_for(rule, wildcards=None):
    """results/benchmarks/<rule>[/<wildcards>].tsv"""
    return str(Path(R, "benchmarks", rule, *filter(None, [wildcards]))) + ".tsv"


def diffusion_model(wildcards):
    """The pipeline folder that a split generates with: trained on the split, or the pretrained copy."""
    if config["diffusion"]["pretrained"]:
        return f"{R}/diffusion/pretrained/model"
    return f"{R}/diffusion/{wildcards.split}/model"


IMPORTS = bool(config["diffusion"]["pretrained"] or config["diffusion"]["init_from"])
# The mel image of the diffusion pipelines: the imported one's (fine-tuning keeps it), or diffusion.mel.
MEL = None if IMPORTS else WRITTEN["diffusion"]["mel"]


def mel_image(wildcards=None):
    """{"model": the imported pipeline} whose mel image settings the round trip uses, where one is
    imported; trained from scratch, the image is diffusion.mel (MEL), and no model is needed."""
    return {"model": f"{R}/diffusion/pretrained/model"} if IMPORTS else {}


def fine_tuning_start(wildcards):
    """The imported pipeline that train_diffusion fine-tunes (diffusion.init_from), if any."""
    return f"{R}/diffusion/pretrained/model" if config["diffusion"]["init_from"] else []


def source_features(split, source, replicate):
    """Training features that a generating source adds from one generated set: one clip per pair,
    interpolated or mel-averaged; with the confidence filter, the kept share."""
    kept = "_kept" if config["generate"]["filter"] == "confidence" else ""
    return f"{R}/features/{split}/rep{replicate}/{source}{kept}.safetensors"


def generated_features(wildcards):
    source = ARMS[wildcards.arm].generated
    return [source_features(wildcards.split, source, replicate_of(wildcards.seed))] if source else []


def generated_set(wildcards):
    """The generated set that a run trains with; None for arms without generated clips."""
    return replicate_of(wildcards.seed) if ARMS[wildcards.arm].generated else None


def specaugment(wildcards):
    return config["specaugment"] if ARMS[wildcards.arm].specaugment else None


def judge_files(name, split):
    """The file `name` of both judges of a split (trained on either half of its training recordings)."""
    return expand(f"{R}/judges/{split}/half{{half}}/{name}", half=(0, 1))


def judges(wildcards):
    """The weights of both judges of the split whose generated set is scored."""
    return judge_files("model.safetensors", wildcards.split)


def decoded_classes(wildcards):
    """The class folders of clips that the diffusion model decoded for one source of a generated set."""
    folder = DECODED[wildcards.source]
    return expand(f"{R}/{folder}/{wildcards.split}/rep{wildcards.replicate}/{{class_name}}", class_name=CLASSES)


def scored_features(wildcards):
    """The features that score_generated labels: a source's clips of one generated set, all of them,
    or for "sources" the dataset's real clips (of which it takes the pairs' first clips)."""
    if wildcards.source == "sources":
        return rules.features.output.features
    return f"{R}/features/{wildcards.split}/rep{wildcards.replicate}/{wildcards.source}.safetensors"


def all_scores():
    """The judges' scores of every scored source and of the pairs' first clips as they are, in
    every generated set, where arms add generated clips."""
    scores = f"{R}/scores/{{split}}/rep{{replicate}}/{{source}}.csv"
    return expand(scores, split=SPLITS, replicate=range(REPLICATES), source=[*SCORED, "sources"]) if SOURCES else []


def all_judge_files(name):
    return [path for split in SPLITS for path in judge_files(name, split)] if SOURCES else []


def all_generation_records():
    """What records the device that diffusion training and generation ran on: trained models and
    the class folders of every source that the diffusion model decodes."""
    decoded = [DECODED[source] for source in SOURCES if source in MODEL_SOURCES]
    if not decoded:
        return []
    models = [] if config["diffusion"]["pretrained"] else expand(f"{R}/diffusion/{{split}}/model", split=SPLITS)
    classes = expand(
        f"{R}/{{folder}}/{{split}}/rep{{replicate}}/{{class_name}}",
        folder=decoded,
        split=SPLITS,
        replicate=range(REPLICATES),
        class_name=CLASSES,
    )
    return models + classes


def trains_diffusion():
    """Whether the run trains diffusion models: some arm's clips come from one, none is pretrained."""
    return bool(set(SOURCES) & set(MODEL_SOURCES)) and not config["diffusion"]["pretrained"]


def diffusion_training_plots():
    """The report's plot of diffusion training loss, where the run trains diffusion models."""
    return [f"{R}/plots/diffusion_training.png"] if trains_diffusion() else []


def all_metrics():
    return expand(
        f"{R}/models/{{split}}/{{arm}}/seed{{seed}}/metrics.json",
        split=SPLITS,
        arm=config["arms"],
        seed=config["seeds"],
    )


def listen_inputs(wildcards):
    """What the listening page plays: the first split's first generated set, from each generating source."""
    split = SPLITS[0]
    inputs = {"manifest": rules.manifest.output.manifest, "pairs": f"{R}/pairs/{split}/rep0.csv"}
    if set(SOURCES) & set(IMAGE_SOURCES):
        inputs |= mel_image()
    for source, name in (("diffusion", "classes"), ("reconstruction", "reconstructed")):
        if source in SOURCES:
            inputs[name] = decoded_classes(SimpleNamespace(split=split, replicate=0, source=source))
    if "mel_average" in SOURCES:
        inputs["mel_average"] = f"{R}/features/{split}/rep0/mel_average.safetensors"
    return inputs


def final_outputs():
    outputs = [f"{R}/tables/{name}" for name in ("accuracy.csv", "accuracy.md", "gain_pivot.csv")]
    outputs += [f"{R}/plots/accuracy.png", f"{R}/plots/accuracy_vs_labelled.png"]
    outputs += [f"{R}/plots/classifier_training.png", *diffusion_training_plots()]
    if "diffusion" in SOURCES:
        outputs += expand(f"{R}/plots/examples_{{split}}.png", split=SPLITS)
    if SOURCES:
        outputs.append(f"{R}/report/listen.html")
    return outputs
