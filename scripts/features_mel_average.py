from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_mel_average(
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.input.real,
        snakemake.params.pairs,
        snakemake.output.features,
    )
