import os
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from diffaug.arms import ARMS, GENERATORS, IMAGE_GENERATORS, MODEL_GENERATORS, heard_as
from diffaug.layouts import URBANSOUND8K_CLASSES, DatasetError, index_file
from diffaug.params import (
    classifier_params,
    diffusion_params,
    features_params,
    generation_params,
    imports_pipeline,
    manifest_params,
    mel_params,
    pairs_params,
    prepare_params,
    pretrained_params,
    reconstruction_params,
    sampling_params,
    split_params,
)
from diffaug.plan import data_root, machine_fit, planned_catalogue, require_dataset, require_fit, settled_config
from diffaug.probes import partition_given, slurm_partition_problem, will_use_cuda
from diffaug.schema import ConfigError
from diffaug.splits import split_names

# envs/diffaug.yaml installs the project from this checkout: pip expands ${DIFFAUG_ROOT} when
# conda creates the environment (Snakemake copies the env file, so it cannot use a relative path).
os.environ.update(DIFFAUG_ROOT=str(Path(str(workflow.current_basedir)).parents[1]))

# The config checked, its defaults filled in and its keys sorted; WRITTEN is the config as its files
# wrote it, which the sections in rule params come from (see diffaug.params).
PLANNING = not (workflow.remote_exec or workflow.subprocess_exec)  # the process that plans the run
try:
    WRITTEN = settled_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    DATA_ROOT = data_root(config)
    # The file whose change means the dataset changed: the layout's metadata, or a class-folder tree's root.
    METADATA = index_file(config["dataset"], DATA_ROOT)
    require_dataset(config["dataset"], METADATA)
    CATALOGUE = planned_catalogue(config["dataset"], DATA_ROOT)
    if PLANNING:
        require_fit(config, CATALOGUE)
except (ConfigError, DatasetError) as error:
    sys.exit(str(error))

R = config["results"]
SPLITS = split_names(config["protocol"])
LAYOUT = config["dataset"]["layout"]
# The class list, in label order, names the per-class folders; a download to come has UrbanSound8K's.
CLASSES = CATALOGUE.classes if CATALOGUE else URBANSOUND8K_CLASSES
DEVICES = {section: config[section]["device"] for section in ("diffusion", "generate", "classifier")}


@cache
def gpu_at_hand():
    """Whether `auto` devices get a GPU (plan.machine_fit), asked when jobs are planned, once the
    executor is known; a config that does not fit this machine is refused, or warned of in a dry run."""
    fit = machine_fit(DEVICES, local=workflow.local_exec, planning=PLANNING, dry_run=workflow.dryrun)
    if fit.fatal:
        sys.exit(fit.message)
    if fit.message:
        print(fit.message, file=sys.stderr)
    return fit.gpu


onstart:
    # Jobs ask for their resources (and so for gpu_at_hand) only once scheduled: without this, a local
    # run would do the work up to the first GPU job before refusing a device it cannot have.
    if workflow.local_exec:
        gpu_at_hand()
    if workflow.executor_plugin is not None and "slurm" in workflow.executor_plugin.name:
        message, fatal = slurm_partition_problem(partition_given(workflow.resource_settings))
        if message:
            print(("error: " if fatal else "note: ") + message, file=sys.stderr)
        if fatal:
            sys.exit(1)


def gpus(section):
    """The `gpu` resource of the jobs that compute on the section's device; 1 where they will use a GPU."""
    return lambda wildcards: int(will_use_cuda(DEVICES[section], gpu_at_hand()))


THREADS = config["threads"]
FIRST_SEED = config["seeds"][0]
ARM_GENERATORS = sorted({ARMS[v].generator for v in config["arms"]} - {None})
# What the judges score: every generator the arms add, and with any generator from the diffusion pipeline's
# image the round trip too, to tell the image's losses from the model's.
SCORED = sorted(set(ARM_GENERATORS) | ({"round_trip"} if set(ARM_GENERATORS) & set(IMAGE_GENERATORS) else set()))
# Where the clips that the diffusion model decodes are written, per generator.
DECODED = {"diffusion": "generated", "reconstruction": "reconstructed", "sample": "sampled"}
GENERATED_SETS = config["generate"]["sets"]
# Rule params (diffaug.params): what each rule reads, so that a changed setting reruns exactly that.
PREPARE = prepare_params(WRITTEN["dataset"])
MANIFEST = manifest_params(config["dataset"], CATALOGUE.clips["id"] if CATALOGUE else None)
PAIRS = pairs_params(config["generate"])
FEATURES = features_params(WRITTEN["features"])
CLASSIFIER = classifier_params(WRITTEN["classifier"])
GENERATION = generation_params(WRITTEN["generate"])
RECONSTRUCTION = reconstruction_params(WRITTEN["generate"])
SAMPLING = sampling_params(WRITTEN["generate"])
IMPORTS = imports_pipeline(config["diffusion"])
# The mel image of the diffusion pipelines: the imported one's (fine-tuning keeps it), or diffusion.mel.
MEL = mel_params(WRITTEN["diffusion"])


def generated_set_of_seed(seed):
    """The generated set that a classifier seed trains with: the seed's place in `seeds`, modulo
    the number of sets."""
    return config["seeds"].index(int(seed)) % GENERATED_SETS


wildcard_constraints:
    split=r"(random|fold\d+)(-n\d+)?",
    arm="|".join(config["arms"]),
    generator="|".join(GENERATORS),
    generated_set=r"\d+",


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


def mel_image(wildcards=None):
    """{"model": the imported pipeline} whose mel image settings the round trip uses, where one is
    imported; trained from scratch, the image is diffusion.mel (MEL), and no model is needed."""
    return {"model": f"{R}/diffusion/pretrained/model"} if IMPORTS else {}


def fine_tuning_start(wildcards):
    """The imported pipeline that train_diffusion fine-tunes (diffusion.init_from), if any."""
    return f"{R}/diffusion/pretrained/model" if config["diffusion"]["init_from"] else []


def conditioning_classes(wildcards):
    """The class list that a class-conditional diffusion model is trained on (diffusion.conditioning class)."""
    return rules.manifest.output.class_list if config["diffusion"]["conditioning"] == "class" else []


def generator_features(split, generator, generated_set):
    """Training features that a generator adds from one generated set: one clip per pair; with the
    confidence filter, the kept share."""
    kept = "_kept" if config["generate"]["filter"] == "confidence" else ""
    return f"{R}/features/{split}/set{generated_set}/{generator}{kept}.safetensors"


def generated_features(wildcards):
    """The features that an arm's generator adds, of every generated set in order (none for arms without)."""
    generator = ARMS[wildcards.arm].generator
    return [generator_features(wildcards.split, generator, k) for k in range(GENERATED_SETS)] if generator else []


def generated_sets(wildcards):
    """The generated set that each seed's run trains with, by seed; None for arms without generated clips."""
    return [generated_set_of_seed(seed) if ARMS[wildcards.arm].generator else None for seed in config["seeds"]]


def seed_files(name):
    """A file of each seed's run of one split and arm: what a train_classifier job writes."""
    return [f"{R}/models/{{split}}/{{arm}}/seed{seed}/{name}" for seed in config["seeds"]]


def specaugment(wildcards):
    return config["specaugment"] if ARMS[wildcards.arm].specaugment else None


def judge_files(name, split):
    """The file `name` of both judges of a split (trained on either half of its training recordings)."""
    return [f"{R}/judges/{split}/half{half}/{name}" for half in (0, 1)]


def judges(wildcards):
    """The weights of both judges of the split whose generated set is scored."""
    return judge_files("model.safetensors", wildcards.split)


def class_dirs(folder, split, generated_set):
    """The folders, one per class, of a generated set of a split under `folder` (generated, reconstructed)."""
    return [f"{R}/{folder}/{split}/set{generated_set}/{name}" for name in CLASSES]


def class_folders(folder):
    """The output folders of a generating job: one per class of a generated set, under `folder`."""
    return [directory(path) for path in class_dirs(folder, "{split}", "{generated_set}")]


def decoded_classes(wildcards):
    """The class folders of clips that the diffusion model decoded for one generator of a generated set."""
    return class_dirs(DECODED[wildcards.generator], wildcards.split, wildcards.generated_set)


def scored_features(wildcards):
    """The features that score_generated labels: a generator's clips of one generated set, all of them,
    or for the origin "sources" the dataset's real clips (of which it takes the pairs' first clips)."""
    if wildcards.origin == "sources":
        return rules.features.output.features
    return f"{R}/features/{wildcards.split}/set{wildcards.generated_set}/{wildcards.origin}.safetensors"


def all_scores():
    """The judges' scores of every scored generator and of the pairs' first clips as they are, in
    every generated set, where arms add generated clips."""
    scores = f"{R}/scores/{{split}}/set{{generated_set}}/{{origin}}.csv"
    return (
        expand(scores, split=SPLITS, generated_set=range(GENERATED_SETS), origin=[*SCORED, "sources"])
        if ARM_GENERATORS
        else []
    )


def all_judge_files(name):
    return [path for split in SPLITS for path in judge_files(name, split)] if ARM_GENERATORS else []


def all_novelty_files():
    """How new each split's clips are (rule novelty), where arms add generated clips."""
    return expand(f"{R}/novelty/{{split}}.csv", split=SPLITS) if ARM_GENERATORS else []


def scored_of_split(wildcards):
    """The features of every scored generator's clips in every generated set of a split: what novelty measures."""
    features = f"{R}/features/{wildcards.split}/set{{generated_set}}/{{generator}}.safetensors"
    return expand(features, generated_set=range(GENERATED_SETS), generator=SCORED)


def all_generation_records():
    """What records the device that diffusion training and generation ran on: trained models and
    the class folders of every generator whose clips the diffusion model decodes."""
    decoded = [DECODED[generator] for generator in ARM_GENERATORS if generator in MODEL_GENERATORS]
    if not decoded:
        return []
    models = [] if config["diffusion"]["pretrained"] else expand(f"{R}/diffusion/{{split}}/model", split=SPLITS)
    classes = [
        path
        for folder in decoded
        for split in SPLITS
        for generated_set in range(GENERATED_SETS)
        for path in class_dirs(folder, split, generated_set)
    ]
    return models + classes


def trains_diffusion():
    """Whether the run trains diffusion models: some arm's clips come from one, none is pretrained."""
    return bool(set(ARM_GENERATORS) & set(MODEL_GENERATORS)) and not config["diffusion"]["pretrained"]


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
    """What the listening page plays: the first split's first generated set, from each generator."""
    split = SPLITS[0]
    inputs = {"manifest": rules.manifest.output.manifest, "pairs": f"{R}/pairs/{split}/set0.csv"}
    if set(ARM_GENERATORS) & set(IMAGE_GENERATORS):
        inputs |= mel_image()
    names = {"diffusion": "classes", "reconstruction": "reconstructed", "sample": "sampled"}
    for generator in (g for g in names if g in ARM_GENERATORS):
        name = names[heard_as(generator, config["generate"]["mode"])]
        inputs[name] = decoded_classes(SimpleNamespace(split=split, generated_set=0, generator=generator))
    if "mel_average" in ARM_GENERATORS:
        inputs["mel_average"] = f"{R}/features/{split}/set0/mel_average.safetensors"
    return inputs


def final_outputs():
    outputs = [f"{R}/tables/{name}" for name in ("accuracy.csv", "accuracy.md", "gain_pivot.csv")]
    outputs += [f"{R}/plots/accuracy.png", f"{R}/plots/accuracy_vs_labelled.png"]
    outputs += [f"{R}/plots/classifier_training.png", *diffusion_training_plots()]
    if "diffusion" in ARM_GENERATORS:
        outputs += expand(f"{R}/plots/examples_{{split}}.png", split=SPLITS)
    if ARM_GENERATORS:
        outputs += [f"{R}/report/listen.html", f"{R}/plots/novelty.png"]
    return outputs
