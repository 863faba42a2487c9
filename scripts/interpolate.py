from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.interpolate(
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.input.model,
        snakemake.wildcards.class_name,
        snakemake.params.generate,
        snakemake.params.output_rate,
        snakemake.output.clips,
    )
