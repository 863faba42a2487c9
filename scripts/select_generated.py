from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.select_generated(
        snakemake.input.features,
        snakemake.input.scores,
        snakemake.input.pairs,
        snakemake.params.keep,
        snakemake.output.features,
        snakemake.output.fates,
    )
