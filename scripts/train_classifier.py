from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_classifier(
        snakemake.input.real,
        snakemake.input.split,
        list(snakemake.input.generated),
        snakemake.wildcards.arm,
        int(snakemake.wildcards.seed),
        snakemake.wildcards.split,
        snakemake.params.classifier,
        snakemake.params.specaugment,
        snakemake.output.weights,
        snakemake.output.metrics,
        snakemake.params.generated_set,
        features=snakemake.params.features,
        description=snakemake.output.description,
    )
