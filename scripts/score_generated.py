from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.score_generated(
        snakemake.input.features, snakemake.input.weights, snakemake.params.classifier, snakemake.output.scores
    )
