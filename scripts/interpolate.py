from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.interpolate(
        snakemake.input.manifest,
        snakemake.input.pairs,
        snakemake.input.model,
        snakemake.wildcards.class_name,
        snakemake.params.generate,
        int(snakemake.wildcards.replicate),
        snakemake.params.output_rate,
        snakemake.output.clips,
    )
