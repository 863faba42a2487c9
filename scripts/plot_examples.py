from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.plot_examples(
        snakemake.input.manifest,
        snakemake.input.split,
        list(snakemake.input.classes),
        snakemake.input.model,
        snakemake.output.plot,
    )
