from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_judges(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        split_json=snakemake.input.split,
        classifier=snakemake.params.classifier,
        seed=snakemake.params.seed,
        weights=list(snakemake.output.weights),
        metrics=list(snakemake.output.metrics),
        held_out=list(snakemake.output.held_out),
    )
