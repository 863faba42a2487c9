from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.split(snakemake.input.manifest, snakemake.wildcards.split, snakemake.params.protocol, snakemake.output.split)
