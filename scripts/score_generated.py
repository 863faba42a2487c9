from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.score_generated(
        features=snakemake.input.features,
        weights=snakemake.input.weights,
        classifier=snakemake.params.classifier,
        output=snakemake.output.scores,
    )
