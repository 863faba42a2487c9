from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.manifest(
        snakemake.input.metadata, snakemake.params.dataset, snakemake.output.manifest, snakemake.output.rejected
    )
