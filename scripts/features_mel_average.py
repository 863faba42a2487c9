from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_mel_average(snakemake.input.real, snakemake.input.pairs, snakemake.output.features)
