from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features(snakemake.input.manifest, snakemake.params.features, snakemake.output.features, snakemake.threads)
