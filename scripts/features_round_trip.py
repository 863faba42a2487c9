from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_round_trip(
        snakemake.input.manifest,
        snakemake.input.pairs,
        snakemake.input.model,
        snakemake.params.features,
        snakemake.params.seed,
        int(snakemake.wildcards.replicate),
        snakemake.output.features,
    )
