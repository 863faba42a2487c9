from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_generated(
        list(snakemake.input.classes), snakemake.params.features, snakemake.output.features, snakemake.threads
    )
