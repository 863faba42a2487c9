from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.score_generated(
        snakemake.input.features, snakemake.input.weights, snakemake.params.classifier, snakemake.output.scores
    )
