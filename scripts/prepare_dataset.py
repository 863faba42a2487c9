from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.prepare_dataset(snakemake.params.dataset, snakemake.output.metadata, snakemake.threads)
