from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_round_trip(
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.input.model,
        snakemake.params.pairs,
        snakemake.params.features,
        snakemake.output.features,
    )
