from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_diffusion(
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.params.diffusion,
        snakemake.output.model,
        snakemake.input.init or None,
        snakemake.threads,
    )
