from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_diffusion(
        manifest_csv=snakemake.input.manifest,
        split_json=snakemake.input.split,
        diffusion=snakemake.params.diffusion,
        output=snakemake.output.model,
        init=snakemake.input.init or None,
        classes_txt=snakemake.input.class_list or None,
        threads=snakemake.threads,
    )
