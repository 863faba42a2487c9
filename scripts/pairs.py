from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.pairs(
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.params.pairs,
        int(snakemake.wildcards.replicate),
        snakemake.output.pairs,
    )
